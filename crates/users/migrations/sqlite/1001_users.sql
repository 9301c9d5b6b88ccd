-- Users service tables. Instants are Unix milliseconds (BIGINT) on both backends.
CREATE TABLE users_accounts (
    id               TEXT PRIMARY KEY,
    email            TEXT UNIQUE,              -- normalised (trimmed, lower-case); NULL for external identities without a free email
    display_name     TEXT NOT NULL,
    password_hash    TEXT,                     -- argon2id PHC string; NULL for external identities
    external_issuer  TEXT,
    external_subject TEXT,
    language         TEXT NOT NULL DEFAULT 'en',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (external_issuer, external_subject)
);

CREATE TABLE users_roles (
    user_id    TEXT NOT NULL REFERENCES users_accounts(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('user', 'organizer', 'admin')),
    granted_at BIGINT NOT NULL,
    granted_by TEXT,
    PRIMARY KEY (user_id, role)
);

-- Only a SHA-256 of each refresh token is stored. Tokens rotate on use; a family ties a chain together
-- so that reuse of a rotated token revokes the whole chain.
CREATE TABLE users_refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users_accounts(id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX users_refresh_tokens_family ON users_refresh_tokens (family_id);
CREATE INDEX users_refresh_tokens_user ON users_refresh_tokens (user_id);

-- Ed25519 keys of the built-in issuer; the newest signs, recent ones stay in the JWKS for verification.
CREATE TABLE users_signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pkcs8 TEXT NOT NULL,               -- base64 PKCS#8 v2 document
    public_key    TEXT NOT NULL,               -- base64url raw 32-byte key
    created_at    BIGINT NOT NULL
);

CREATE TABLE users_organizers (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL UNIQUE REFERENCES users_accounts(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    logo          TEXT,
    contact_email TEXT NOT NULL,
    contact_phone TEXT,
    website       TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE users_organizer_applications (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users_accounts(id) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    name          TEXT NOT NULL,
    logo          TEXT,
    contact_email TEXT NOT NULL,
    contact_phone TEXT,
    website       TEXT,
    message       TEXT,
    decided_by    TEXT,
    decided_at    BIGINT,
    decision_note TEXT,
    created_at    BIGINT NOT NULL
);
-- At most one pending application per user.
CREATE UNIQUE INDEX users_organizer_applications_pending ON users_organizer_applications (user_id) WHERE status = 'pending';

CREATE TABLE users_audit_log (
    id        TEXT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor_id  TEXT,
    action    TEXT NOT NULL,
    target_id TEXT,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX users_audit_log_at ON users_audit_log (at);
