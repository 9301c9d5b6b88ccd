-- When a successful payment was settled: its booking confirmed, or the payment refunded because
-- the booking could no longer be confirmed. Successes left unsettled are found by the
-- reconciliation sweep (a lost or delayed `payment.succeeded`).
ALTER TABLE payments_payments ADD COLUMN settled_at BIGINT;
UPDATE payments_payments SET settled_at = updated_at WHERE status IN ('partially_refunded', 'refunded');
CREATE INDEX payments_unsettled ON payments_payments (updated_at) WHERE status = 'succeeded' AND settled_at IS NULL;

-- The sandbox provider's own books: what the tester chose on its pay page, written before the
-- sandbox's webhook is sent, so that reconciliation can ask the sandbox as it would ask a real
-- provider.
CREATE TABLE payments_sandbox_ledger (
    payment_id   TEXT PRIMARY KEY,
    outcome      TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'abandoned')),
    amount_cents BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    decided_at   BIGINT NOT NULL
);
