-- Bookings service tables. The inventory rows are the source of truth for sold and held counts.
CREATE TABLE bookings_inventory (
    event_id TEXT NOT NULL,
    type_id  TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    sold     BIGINT NOT NULL DEFAULT 0 CHECK (sold >= 0),
    held     BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    PRIMARY KEY (event_id, type_id)
);

CREATE TABLE bookings_event_totals (
    event_id TEXT PRIMARY KEY,
    capacity BIGINT NOT NULL,
    sold     BIGINT NOT NULL DEFAULT 0 CHECK (sold >= 0),
    held     BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0)
);

-- Held plus confirmed tickets of a user for an event (max_tickets_per_user).
CREATE TABLE bookings_user_counts (
    event_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    tickets  BIGINT NOT NULL CHECK (tickets >= 0),
    PRIMARY KEY (event_id, user_id)
);

CREATE TABLE bookings_bookings (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending_payment', 'confirmed', 'expired', 'cancelled')),
    amount_cents    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX bookings_pending_expiry ON bookings_bookings (expires_at) WHERE status = 'pending_payment';
CREATE INDEX bookings_by_user ON bookings_bookings (user_id, id);
CREATE INDEX bookings_by_event ON bookings_bookings (event_id, status);

CREATE TABLE bookings_items (
    booking_id       TEXT NOT NULL REFERENCES bookings_bookings(id) ON DELETE CASCADE,
    type_id          TEXT NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL,
    refundable       BOOLEAN NOT NULL,
    PRIMARY KEY (booking_id, type_id)
);

CREATE TABLE bookings_tickets (
    id            TEXT PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    booking_id    TEXT NOT NULL REFERENCES bookings_bookings(id) ON DELETE CASCADE,
    event_id      TEXT NOT NULL,
    type_id       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('valid', 'cancelled')),
    token         TEXT NOT NULL,
    checked_in_at BIGINT,
    checkin_gate  TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX bookings_tickets_by_user ON bookings_tickets (user_id, id);
CREATE INDEX bookings_tickets_by_event ON bookings_tickets (event_id, id);

-- Scan results by scanner nonce, so a retried scan gets the same answer.
CREATE TABLE bookings_checkins (
    nonce      TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    ticket_id  TEXT,
    result     TEXT NOT NULL,
    scanned_at BIGINT NOT NULL
);

-- Ed25519 key per event signing its tickets; the public half is published for offline scanners.
CREATE TABLE bookings_event_keys (
    event_id      TEXT PRIMARY KEY,
    kid           TEXT NOT NULL,
    private_pkcs8 TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Door staff appointed by the organizer, by e-mail.
CREATE TABLE bookings_staff (
    event_id TEXT NOT NULL,
    email    TEXT NOT NULL,
    PRIMARY KEY (event_id, email)
);

CREATE TABLE bookings_audit_log (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor_id   TEXT,
    action     TEXT NOT NULL,
    booking_id TEXT,
    detail     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX bookings_audit_by_booking ON bookings_audit_log (booking_id);
