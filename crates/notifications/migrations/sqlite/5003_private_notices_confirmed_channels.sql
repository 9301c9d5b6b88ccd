-- Private notices (account mails with single-use links, channel codes) are sent but never shown in
-- the mailbox; their body is blanked once delivered or given up.
ALTER TABLE notifications_mailbox ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE;

-- Notices go to a Telegram chat or phone only once its owner typed back the code sent there.
ALTER TABLE notifications_channels ADD COLUMN telegram_confirmed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE notifications_channels ADD COLUMN phone_confirmed BOOLEAN NOT NULL DEFAULT FALSE;

-- The code last sent to a channel. Six digits are guessed by trying, not by reading hashes, so the
-- code is kept as is; what protects it is the expiry and the attempt limit.
CREATE TABLE notifications_channel_codes (
    user_id    TEXT NOT NULL,
    channel    TEXT NOT NULL CHECK (channel IN ('telegram', 'sms')),
    recipient  TEXT NOT NULL,
    code       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, channel)
);
