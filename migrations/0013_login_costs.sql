-- What a login costs PostgreSQL (measured with bench/run.mjs --logins):
--
-- 1. `open_login_session` counted the service's connected users over every session row of every service (there was
--    no index by service), on each login of a service with a session quota (the default, 50). The live sessions of a
--    service are now an index range: by service and expiry, among the sessions not ended.
-- 2. Its statements and those of `lockout_admit` were planned again at each call: their parameters are arrays, which
--    the plan cache judged worth a custom plan every time. Every statement in them is a lookup by key, by user or by
--    that index, whatever the values: a generic plan, made once per connection, is the right one.
--
-- The index is built in the migration's transaction (not CONCURRENTLY): logins wait for it. Ended and expired sessions
-- are purged after their retention, so the table stays small; on a large one, build the index CONCURRENTLY by hand
-- first, and this statement finds it (IF NOT EXISTS).
CREATE INDEX IF NOT EXISTS user_session_service_live_idx ON user_session (service_name, expires_at) WHERE ended_at IS NULL;

ALTER FUNCTION lockout_admit(text[], integer[], double precision[], double precision[], integer[], double precision[],
                             double precision[], timestamptz)
  SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION open_login_session(text, bigint, text, inet, text, bytea, timestamptz, timestamptz, text, boolean, bigint,
                                  text[], text[], timestamptz[])
  SET plan_cache_mode = force_generic_plan;
