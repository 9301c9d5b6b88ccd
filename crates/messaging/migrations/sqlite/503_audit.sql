-- Who replayed which dead letter, written in the replay's transaction.
CREATE TABLE messaging_audit_log (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    consumer   TEXT NOT NULL,
    message_id TEXT NOT NULL
);
