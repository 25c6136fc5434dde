-- What a login's admission costs PostgreSQL, measured with bench/run.mjs --logins (2 cores, pool of 2): 2.3-2.6 ms of
-- its CPU per login, against 1.0-1.3 ms for the floor of a login (bench/baseline.mjs `/floor`).
--
-- `lockout_admit` (0012) wrote each key's row three times: an upsert that created it or rewrote it unchanged, a row
-- lock (`FOR UPDATE`), then the count. It now counts in one upsert: each key's row is created or counted, and locked,
-- in key order, and a key whose lock is running is left as it is (`ON CONFLICT ... DO UPDATE ... WHERE`, which still
-- locks the row and reads its latest committed version: a parallel attempt waits for the one before it and then sees
-- the lock that attempt set). When a key was locked, the attempt is refused as before: the keys it counted get the
-- count back (their lock, if the count set one, goes; they had none running, or they would have been left alone) and
-- the locked keys count it as refused. Their last failure stays at this attempt: a quiet key is forgotten a little later.
--
-- The rules are unchanged and documented in src/security/lockout.ts; `lockout_lock_until` is the lock a key's n-th
-- failure starts.
CREATE FUNCTION lockout_lock_until(
  p_n           integer,
  p_free        integer,
  p_base_ms     double precision,
  p_max_ms      double precision,
  p_hard_limit  integer,
  p_hard_ms     double precision,
  p_now         timestamptz
) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN p_hard_limit IS NOT NULL AND p_n >= p_hard_limit THEN p_now + p_hard_ms * interval '1 millisecond'
    WHEN p_n < p_free THEN NULL
    -- The exponent is capped: a key without a hard limit may count thousands of failures, and 2^1000 overflows.
    ELSE p_now + least(p_base_ms * power(2, least(p_n - p_free, 60)), p_max_ms) * interval '1 millisecond'
  END
$$;

CREATE OR REPLACE FUNCTION lockout_admit(
  p_keys        text[],
  p_free        integer[],
  p_base_ms     double precision[],
  p_max_ms      double precision[],
  p_hard_limit  integer[],
  p_hard_ms     double precision[],
  p_forget_ms   double precision[],
  p_now         timestamptz
) RETURNS TABLE (key text, failures integer, locked_until timestamptz, admitted boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_keys     text[];
  v_failures integer[];
  v_locks    timestamptz[];
BEGIN
  -- Counted on each key, in key order, unless its lock is running.
  WITH input AS (
    SELECT * FROM unnest(p_keys, p_free, p_base_ms, p_max_ms, p_hard_limit, p_hard_ms, p_forget_ms)
      AS i(key, free, base_ms, max_ms, hard_limit, hard_ms, forget_ms)
  ), counted AS (
    INSERT INTO auth_failure AS a (key, failures, last_failure_at, locked_until)
    SELECT i.key, 1, p_now, lockout_lock_until(1, i.free, i.base_ms, i.max_ms, i.hard_limit, i.hard_ms, p_now)
      FROM input AS i ORDER BY i.key
    ON CONFLICT ON CONSTRAINT auth_failure_pkey DO UPDATE
       SET (failures, last_failure_at, locked_until) = (
         SELECT c.n, p_now, lockout_lock_until(c.n, c.free, c.base_ms, c.max_ms, c.hard_limit, c.hard_ms, p_now)
           FROM (SELECT i.*, CASE WHEN i.forget_ms IS NOT NULL
                                   AND extract(epoch FROM p_now - a.last_failure_at) * 1000 > i.forget_ms
                                  THEN 1 ELSE a.failures + 1 END AS n
                   FROM input AS i WHERE i.key = excluded.key) AS c)
     WHERE a.locked_until IS NULL OR a.locked_until <= p_now
    RETURNING a.key, a.failures, a.locked_until
  )
  SELECT array_agg(c.key ORDER BY c.key), array_agg(c.failures ORDER BY c.key), array_agg(c.locked_until ORDER BY c.key)
    INTO v_keys, v_failures, v_locks
    FROM counted AS c;

  IF cardinality(v_keys) = cardinality(p_keys) THEN
    RETURN QUERY
    SELECT k.key, k.failures, k.locked_until, true FROM unnest(v_keys, v_failures, v_locks) AS k(key, failures, locked_until);
    RETURN;
  END IF;

  -- A key is locked: the attempt is refused. The keys it counted get the count back, the locked ones count it apart.
  IF v_keys IS NOT NULL THEN
    UPDATE auth_failure AS a SET failures = greatest(a.failures - 1, 0), locked_until = NULL WHERE a.key = ANY (v_keys);
  END IF;
  RETURN QUERY
  UPDATE auth_failure AS a SET refused = a.refused + 1
   WHERE a.key = ANY (p_keys) AND a.locked_until > p_now
  RETURNING a.key, a.failures, a.locked_until, false;
END
$$;

-- A login reads its context and is admitted in one statement (src/features/secure/repository.ts `loginContext`): the
-- admission runs only when the service's access policy lets the client in (`p_admit`): from outside the allowed
-- networks nothing is counted.
CREATE FUNCTION login_admit(
  p_admit       boolean,
  p_keys        text[],
  p_free        integer[],
  p_base_ms     double precision[],
  p_max_ms      double precision[],
  p_hard_limit  integer[],
  p_hard_ms     double precision[],
  p_forget_ms   double precision[],
  p_now         timestamptz
) RETURNS TABLE (key text, failures integer, locked_until timestamptz, admitted boolean)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_admit AND cardinality(p_keys) > 0 THEN
    RETURN QUERY SELECT * FROM lockout_admit(p_keys, p_free, p_base_ms, p_max_ms, p_hard_limit, p_hard_ms, p_forget_ms, p_now);
  END IF;
END
$$;
