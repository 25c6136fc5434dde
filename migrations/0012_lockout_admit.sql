-- The lockout's admission of one attempt, in one statement (src/security/lockout.ts `admit` calls it; the rules are
-- documented there): the keys' rows are created if new and locked in key order; if one is locked, the attempt is
-- refused and counted apart (`refused`); otherwise it is counted as a failure on every key before anything is checked,
-- with the lock it would start. Per key: free failures, base and maximum delay, hard limit and its lock, and how long a
-- quiet key is remembered (NULL: no hard limit, never forgotten).
CREATE FUNCTION lockout_admit(
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
#variable_conflict use_column
DECLARE
  v_locked boolean;
BEGIN
  INSERT INTO auth_failure AS f (key, failures, last_failure_at, locked_until)
  SELECT k.key, 0, p_now, NULL FROM unnest(p_keys) AS k(key) ORDER BY k.key
  ON CONFLICT ON CONSTRAINT auth_failure_pkey DO UPDATE SET key = excluded.key;

  SELECT coalesce(bool_or(f.locked_until > p_now), false) INTO v_locked
    FROM (SELECT a.locked_until FROM auth_failure AS a WHERE a.key = ANY (p_keys) ORDER BY a.key FOR UPDATE) AS f;

  IF v_locked THEN
    RETURN QUERY
    UPDATE auth_failure AS a SET refused = a.refused + 1
     WHERE a.key = ANY (p_keys) AND a.locked_until > p_now
    RETURNING a.key, a.failures, a.locked_until, false;
    RETURN;
  END IF;

  RETURN QUERY
  WITH input AS (
    SELECT * FROM unnest(p_keys, p_free, p_base_ms, p_max_ms, p_hard_limit, p_hard_ms, p_forget_ms)
      AS i(key, free, base_ms, max_ms, hard_limit, hard_ms, forget_ms)
  ), counted AS (
    SELECT i.*, CASE WHEN i.forget_ms IS NOT NULL
                      AND extract(epoch FROM p_now - a.last_failure_at) * 1000 > i.forget_ms
                     THEN 1 ELSE a.failures + 1 END AS n
      FROM input AS i JOIN auth_failure AS a ON a.key = i.key
  )
  UPDATE auth_failure AS a
     SET failures = c.n,
         last_failure_at = p_now,
         locked_until = CASE
           WHEN c.hard_limit IS NOT NULL AND c.n >= c.hard_limit THEN p_now + c.hard_ms * interval '1 millisecond'
           WHEN c.n < c.free THEN NULL
           -- The exponent is capped: a key without a hard limit may count thousands of failures, and 2^1000 overflows.
           ELSE p_now + least(c.base_ms * power(2, least(c.n - c.free, 60)), c.max_ms) * interval '1 millisecond'
         END
    FROM counted AS c
   WHERE a.key = c.key
  RETURNING a.key, a.failures, a.locked_until, true;
END
$$;
