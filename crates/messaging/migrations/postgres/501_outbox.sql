-- Domain events written in the same transaction as the change they describe; the relay deletes
-- each row once the broker (or every in-process consumer) has it.
CREATE TABLE messaging_outbox (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    routing_key TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Message ids a consumer has acted on, written in the consumer's own transaction.
CREATE TABLE messaging_processed (
    consumer     TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

-- Poison messages of the in-process delivery (RabbitMQ keeps its own dead-letter queue).
CREATE TABLE messaging_dead_letters (
    id          TEXT NOT NULL,
    consumer    TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    message     TEXT NOT NULL,
    error       TEXT NOT NULL,
    failed_at   BIGINT NOT NULL,
    PRIMARY KEY (id, consumer)
);
