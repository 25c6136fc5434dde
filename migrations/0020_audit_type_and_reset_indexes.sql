-- Two reads whose cost grew with rows other people make (found by an attack on a running server):
--
-- A service's audit log filtered by type (`GET …/auditLog?type=x` or `type=x.*`) had no index with `type`: PostgreSQL
-- read the whole `audit_event` table, every tenant's events, in parallel. Failed logins fill it without an account
-- (each writes `login.failed` into the service it names). With 2.5 million events: 212 ms per request, and one tenant
-- sending 6 of them a second filled the pool: another tenant's `GET …/user/{id}` went from 4 ms to 561 ms. The index
-- below finds a service's events of a type, or of a type's prefix (`text_pattern_ops`), newest first.
--
-- A user's password-reset codes were found by `user_id` with no index on it: the daily cap's count, the voiding of the
-- live code and the lookup of the code a reset login tries each read the whole table. A tenant can make many users and
-- each of them ten rows; a reset login with any name, known or not, from anyone, ran one of them (35 ms at 400,000
-- rows).
CREATE INDEX audit_event_service_type_idx ON audit_event (service_name, type text_pattern_ops, id DESC);
CREATE INDEX password_reset_user_idx ON password_reset (user_id, created_at DESC);
