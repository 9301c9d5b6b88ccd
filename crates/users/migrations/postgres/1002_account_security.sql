-- Verified addresses, single-use account links (verification, password reset), sign-in sessions
-- with their device, and deleted (anonymized) accounts.
ALTER TABLE users_accounts ADD COLUMN email_verified_at BIGINT;
ALTER TABLE users_accounts ADD COLUMN deleted_at BIGINT;

-- Only a SHA-256 of each token is stored. `email` is the address the link was sent to: using the
-- link proves it (and, for a change of address, makes it the account's address).
CREATE TABLE users_account_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users_accounts(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'change_email', 'reset_password')),
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX users_account_tokens_user ON users_account_tokens (user_id);

-- A session is a refresh-token family; the device is the User-Agent that signed in (cut to 200 characters).
ALTER TABLE users_refresh_tokens ADD COLUMN device TEXT;
