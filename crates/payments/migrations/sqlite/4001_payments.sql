-- Payments service tables. Amounts in the currency's hundredths (cents; KHR too).
CREATE TABLE payments_payments (
    id              TEXT PRIMARY KEY,
    booking_id      TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    amount_cents    BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency        TEXT NOT NULL,
    -- pending → succeeded | failed | abandoned; succeeded → partially_refunded → refunded
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'abandoned', 'partially_refunded', 'refunded')),
    refunded_cents  BIGINT NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
    -- the provider's id of the attempt (checkout session, KHQR md5) and of the money (for refunds)
    provider_ref    TEXT,
    charge_ref      TEXT,
    next_action     TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX payments_by_booking ON payments_payments (booking_id);
CREATE INDEX payments_pending ON payments_payments (provider, created_at) WHERE status = 'pending';
-- One booking has at most one successful payment.
CREATE UNIQUE INDEX payments_one_success ON payments_payments (booking_id)
    WHERE status IN ('succeeded', 'partially_refunded');

-- Every webhook received, verified or not; (provider, event_id) makes replays no-ops.
CREATE TABLE payments_webhooks (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    event_id    TEXT,
    verified    BOOLEAN NOT NULL,
    outcome     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX payments_webhook_once ON payments_webhooks (provider, event_id) WHERE verified;

CREATE TABLE payments_refunds (
    id           TEXT PRIMARY KEY,
    payment_id   TEXT NOT NULL REFERENCES payments_payments(id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    reason       TEXT NOT NULL,
    -- pending until the provider accepted it (retried in the background); manual when the provider
    -- has no refund API and an operator pays it back
    status       TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'manual')),
    provider_ref TEXT,
    tickets      TEXT NOT NULL DEFAULT '[]',
    requested_by TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX payments_refunds_by_payment ON payments_refunds (payment_id);
