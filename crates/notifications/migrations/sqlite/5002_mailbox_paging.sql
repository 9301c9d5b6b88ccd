-- Mailbox pages are read newest first with the id as tiebreak: an index in that order lets a page
-- stop after its rows instead of sorting all of a user's notices.
CREATE INDEX notifications_mailbox_paging ON notifications_mailbox (user_id, created_at, id);
DROP INDEX notifications_mailbox_by_user;
