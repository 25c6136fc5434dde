-- A service's audit log filtered by a user and a type together read the service's events of one of them: 151-248 ms at
-- 4.5 million events (third attack round), for a user whose events failed logins made without an account; at the API's
-- rate limit, one tenant's PostgreSQL time. This index makes that pair one range too, in the listing's order (by date,
-- then id); a type prefix (`login.*`) with a user is a range of it, sorted.
CREATE INDEX audit_event_user_type_time_idx
  ON audit_event (service_name, user_id, type text_pattern_ops, created_at DESC, id DESC)
  WHERE user_id IS NOT NULL;
