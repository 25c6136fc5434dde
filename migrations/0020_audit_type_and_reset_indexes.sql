-- Reads whose cost grew with rows other people make (found by three attack rounds on running servers):
--
-- A service's audit log was read newest first by id, through an index by service and id, and filtered by the rest.
-- Failed logins fill `audit_event` without an account (each writes `login.failed` into the service it names), so:
-- a filter by type read the whole table, every tenant's events, in parallel (212 ms at 2.5 million; one tenant sending
-- 6 a second filled the pool, and another tenant's GET went from 4 ms to 561 ms); a page before a date walked the
-- primary key back from the newest event of every service (648 ms at 4 million; another tenant's GET at 2.3 s); a type
-- or a user with a date range walked one index and dropped what the other filter refused (837 ms at 4.5 million;
-- another tenant's GET at 5.6 s), and a user with a type read the service's events of one of them (151-248 ms).
-- A page is now ordered by date, then id (src/features/audit/repository.ts `listEvents`), and each filter, alone or
-- with a date range, is one range of one of these indexes, in that order: the service's events, its events of a type
-- (exact, or a prefix: `text_pattern_ops`), about a user, about a user and of a type. The indexes by id (and the one by
-- date alone) go: one index more on each insert than before.
CREATE INDEX audit_event_service_time_idx ON audit_event (service_name, created_at DESC, id DESC);
CREATE INDEX audit_event_type_time_idx ON audit_event (service_name, type text_pattern_ops, created_at DESC, id DESC);
CREATE INDEX audit_event_user_time_idx ON audit_event (service_name, user_id, created_at DESC, id DESC)
  WHERE user_id IS NOT NULL;
CREATE INDEX audit_event_user_type_time_idx
  ON audit_event (service_name, user_id, type text_pattern_ops, created_at DESC, id DESC)
  WHERE user_id IS NOT NULL;
DROP INDEX audit_event_service_idx;
DROP INDEX audit_event_service_id_idx;
DROP INDEX audit_event_user_id_idx;

-- A user's password-reset codes were found by `user_id` with no index on it: the daily cap's count, the voiding of the
-- live code and the lookup of the code a reset login tries each read the whole table. A tenant can make many users and
-- each of them ten rows; a reset login with any name, known or not, from anyone, ran one of them (35 ms at 400,000
-- rows).
CREATE INDEX password_reset_user_idx ON password_reset (user_id, created_at DESC);
