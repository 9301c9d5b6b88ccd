-- Messages a consumer is to be given again later: after a failure that may pass (the database
-- away, a timeout), or because an admin replays a dead letter. In process, the relay's retry pass
-- hands them to the consumer; with RabbitMQ it publishes them to the consumer's own queue.
CREATE TABLE messaging_retries (
    message_id      TEXT NOT NULL,
    consumer        TEXT NOT NULL,
    message         TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, consumer)
);
CREATE INDEX messaging_retries_due ON messaging_retries (next_attempt_at);
