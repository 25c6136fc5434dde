-- An application's waiting consumer keys are counted at each request for a key (the cap of 1,000) and, at the cap, the
-- oldest are deleted. Both want the keys still waiting: a key whose validation link has expired waits, unvalidated,
-- until the retention purges it a week later, and `credential_pending_idx` (migrations/0021), in creation order, read
-- those too, oldest first (an attack round measured 3.7 ms per request at 7,000 of them, made by anyone holding the
-- public application key). Ordered by the link's expiry instead, the keys still waiting are one range of the index: the
-- count reads at most the cap's 1,000 (and the rows deleted since the table's last vacuum), and the deletion takes the
-- oldest of them by creation.
CREATE INDEX credential_pending_expiry_idx ON credential (application_id, validation_expires_at, credential_id)
  WHERE state = 'pendingValidation';
DROP INDEX credential_pending_idx;
