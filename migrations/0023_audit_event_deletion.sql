-- Audit events leave only through `audit_delete_before`: the retention (`AUDIT_RETENTION_DAYS`), `p_batch` events at a
-- time, and the operator's `audit purge`, all at once (`p_batch` NULL).
--
-- 1. The events older than a date are found through an index of the dates, the oldest first. Taken by their ids, the
--    oldest first, a run stopped at the first batch that held younger events, and events dated ahead at the front of
--    the table (a database clock set right after running ahead) kept every older one; a BRIN index of the dates
--    stopped narrowing anything once purges had freed pages that new events then filled (two attack rounds). The index
--    is of the dates in UTC, an expression no other statement uses: an index of `created_at` itself drew the audit
--    log's pages before a date away from the service's own index, to read every tenant's newer events (10,016 rows for
--    a page, against 16).
-- 2. The function runs with the rights of its owner, the role that runs the migrations (SECURITY DEFINER), and deletes
--    only events at least 29 days old (the retention and the purge keep 30 days at least; a day of slack for the clock
--    of the instance). A service role granted EXECUTE on it needs no DELETE on `audit_event`: with DELETE, a session of
--    that role could turn `pcc.audit_purge` on and delete the newest events. EXECUTE is taken from PUBLIC; the owner
--    keeps it.
CREATE INDEX audit_event_created_utc_idx ON audit_event ((created_at AT TIME ZONE 'UTC'));

-- The 29 days are 696 hours, and the function runs in UTC: `interval '29 days'` was counted in the caller's time zone,
-- and a session of the service's role could set a made-up one whose clock jumps ahead, down to 22 days (an attack round).
CREATE FUNCTION audit_delete_before(p_cutoff timestamptz, p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
  v_deleted integer;
BEGIN
  IF p_cutoff IS NULL OR p_cutoff > now() - interval '696 hours' THEN
    RAISE EXCEPTION 'audit events are kept 29 days at least (cutoff %)', p_cutoff
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM set_config('pcc.audit_purge', 'on', true);
  DELETE FROM audit_event
   WHERE id = ANY (ARRAY(SELECT e.id FROM audit_event AS e
                          WHERE (e.created_at AT TIME ZONE 'UTC') < (p_cutoff AT TIME ZONE 'UTC')
                          ORDER BY (e.created_at AT TIME ZONE 'UTC') LIMIT p_batch));
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  PERFORM set_config('pcc.audit_purge', 'off', true);
  RETURN v_deleted;
END
$$;
REVOKE EXECUTE ON FUNCTION audit_delete_before(timestamptz, integer) FROM PUBLIC;
