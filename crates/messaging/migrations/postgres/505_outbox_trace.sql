-- The W3C traceparent of the change a message tells of: the relay sends it in the AMQP headers,
-- so that the consumer's work joins the trace of the request that caused it. NULL when untraced.
ALTER TABLE messaging_outbox ADD COLUMN trace_parent TEXT;
