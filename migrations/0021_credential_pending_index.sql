-- An application's consumer keys waiting for validation are counted at each request for a key (the cap of 1,000) and,
-- at the cap, the oldest are deleted, under the application's row lock. Both read every key the application ever had
-- through `credential_application_idx`: validated, refused and expired ones included, as many as anyone with the public
-- application key made (an attack round measured 152 ms per count at 2 million rows, and requests of one application
-- queued on its lock while holding the pool's connections: another tenant's GET went from 4 ms to 6.2 s). This index
-- holds only the waiting keys, in the order the oldest are taken.
CREATE INDEX credential_pending_idx ON credential (application_id, created_at, credential_id)
  WHERE state = 'pendingValidation';
