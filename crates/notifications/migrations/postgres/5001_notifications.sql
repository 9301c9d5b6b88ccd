-- Every notice a user was sent, readable in the platform (the default channel).
CREATE TABLE notifications_mailbox (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    language          TEXT NOT NULL,
    subject           TEXT NOT NULL,
    body              TEXT NOT NULL,
    -- booking whose ticket QR codes go with the notice, if any
    booking_id        TEXT,
    source_message_id TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX notifications_mailbox_by_user ON notifications_mailbox (user_id, created_at);

-- Where each notice goes beyond the mailbox, and how that went.
CREATE TABLE notifications_deliveries (
    id              TEXT PRIMARY KEY,
    mailbox_id      TEXT NOT NULL REFERENCES notifications_mailbox(id),
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'telegram', 'sms')),
    recipient       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX notifications_deliveries_due ON notifications_deliveries (next_attempt_at) WHERE status = 'pending';

-- Telegram chat and phone number a user gave for notices.
CREATE TABLE notifications_channels (
    user_id          TEXT PRIMARY KEY,
    telegram_chat_id TEXT,
    phone            TEXT,
    updated_at       BIGINT NOT NULL
);
