-- Several relays may share one outbox (several instances on one database). A relay claims the rows
-- it is about to deliver (`claimed_by`, until `claimed_until`, Unix ms) and renews the claim while
-- delivering; no other relay takes a row while its claim lasts, so none is sent twice. The claim of a
-- relay that died runs out and another relay takes its rows.
ALTER TABLE messaging_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE messaging_outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
