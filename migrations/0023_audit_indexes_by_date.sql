-- A service's audit log is read newest first by date, then id (src/features/audit/repository.ts `listEvents`), and each
-- of its filters, alone or with a date range, is one range of an index in that order: the service's events
-- (migrations/0022), its events of a type (exact, or a prefix: `text_pattern_ops`), its events about a user. Before,
-- pages were ordered by id unless bounded by a date, and a filter with a date range walked one index and dropped what
-- the other filter refused: `type=login.locked&to=…` read every event of the service (837 ms at 4.5 million events,
-- which failed logins make without an account); one tenant at the API's rate limit took another's GET from 7 ms to
-- 5.6 s (an attack round). The indexes by id they replace are dropped: as many indexes as before on each insert.
CREATE INDEX audit_event_type_time_idx ON audit_event (service_name, type text_pattern_ops, created_at DESC, id DESC);
CREATE INDEX audit_event_user_time_idx ON audit_event (service_name, user_id, created_at DESC, id DESC)
  WHERE user_id IS NOT NULL;
DROP INDEX audit_event_service_type_idx;
DROP INDEX audit_event_user_id_idx;
DROP INDEX audit_event_service_id_idx;
