-- A login's commit took the lockout's keys out of the order every admission takes them in (key order: `ip:…` before
-- `user:…`): it deleted the login's keys, then gave the attempt back to the network's. A success and the next attempt
-- of the same login from the same network could each hold one and wait for the other: PostgreSQL found the deadlock
-- and one of them failed with a 500 (found by an attack of 20 right and 180 wrong passwords at once, from one address;
-- test/lockout.test.ts reproduces it step by step). `open_login_session` now locks the keys in key order first. The
-- rest of the function is migrations/0011's.
CREATE OR REPLACE FUNCTION open_login_session(
  p_service        text,
  p_user_id        bigint,
  p_actor          text,
  p_ip             inet,
  p_scope          text,
  p_token_hash     bytea,
  p_now            timestamptz,
  p_expires_at     timestamptz,
  p_audit_type     text,
  p_reset          boolean,
  p_totp_step      bigint,        -- the code's step, used once; NULL when no code was checked
  p_clear_keys     text[],        -- lockout keys the success clears
  p_refund_keys    text[],        -- lockout keys that only get this attempt back
  p_refund_locks   timestamptz[]  -- the lock this attempt set on each of those, if any (NULL: none)
) RETURNS TABLE (session_id bigint, replayed boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_limit     integer;
  v_policy    text;
  v_connected integer;
  v_already   boolean;
  v_victim    bigint;
  v_ended     integer;
  v_session   bigint;
BEGIN
  IF p_totp_step IS NOT NULL THEN
    -- A replay, even in parallel: the second insert waits for the first and then finds the step taken.
    INSERT INTO totp_used (user_id, step, used_at) VALUES (p_user_id, p_totp_step, p_now) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      RETURN QUERY SELECT NULL::bigint, true;
      RETURN;
    END IF;
  END IF;

  -- The keys in key order first, as an admission takes them: the deletion below locked the login's keys before the
  -- network's, and an admission of the same login from the same network (network key first) deadlocked with it.
  PERFORM 1 FROM auth_failure AS f WHERE f.key = ANY (p_clear_keys || p_refund_keys) ORDER BY f.key FOR UPDATE;
  DELETE FROM auth_failure WHERE key = ANY (p_clear_keys);
  UPDATE auth_failure AS f
     SET failures = greatest(f.failures - 1, 0),
         locked_until = CASE WHEN f.locked_until = r.own THEN NULL ELSE f.locked_until END
    FROM unnest(p_refund_keys, p_refund_locks) AS r(key, own)
   WHERE f.key = r.key;

  SELECT s.user_limit_concurrent_session, s.user_logout_policy INTO v_limit, v_policy
    FROM service AS s WHERE s.service_name = p_service FOR UPDATE;

  IF v_limit > 0 THEN
    SELECT count(DISTINCT us.user_id), coalesce(bool_or(us.user_id = p_user_id), false) INTO v_connected, v_already
      FROM user_session AS us
     WHERE us.service_name = p_service AND us.ended_at IS NULL AND us.expires_at > p_now;
    IF NOT v_already AND v_connected >= v_limit THEN
      -- At the quota, a new user disconnects others: `first` the earliest connected, `last` the most recent.
      FOR v_victim IN
        SELECT c.user_id
          FROM (SELECT us.user_id, min(us.created_at) AS first_at, max(us.created_at) AS last_at
                  FROM user_session AS us
                 WHERE us.service_name = p_service AND us.ended_at IS NULL AND us.expires_at > p_now
                 GROUP BY us.user_id) AS c
         ORDER BY CASE WHEN v_policy = 'first' THEN c.first_at END ASC,
                  CASE WHEN v_policy <> 'first' THEN c.last_at END DESC,
                  c.user_id
         LIMIT v_connected - v_limit + 1
      LOOP
        UPDATE user_session AS us SET ended_at = p_now, end_reason = 'sessionLimit'
         WHERE us.user_id = v_victim AND us.ended_at IS NULL;
        GET DIAGNOSTICS v_ended = ROW_COUNT;
        INSERT INTO audit_event (service_name, type, actor, ip, user_id, data)
        VALUES (p_service, 'session.ended', p_actor, p_ip, v_victim,
                jsonb_build_object('reason', 'sessionLimit', 'policy', v_policy, 'sessions', v_ended,
                                   'admittedUserId', p_user_id));
      END LOOP;
    END IF;
  END IF;

  INSERT INTO user_session (token_hash, service_name, user_id, scope, ip, created_at, last_seen_at, expires_at)
  VALUES (p_token_hash, p_service, p_user_id, p_scope, p_ip, p_now, p_now, p_expires_at)
  RETURNING user_session.session_id INTO v_session;

  INSERT INTO audit_event (service_name, type, actor, ip, user_id, data)
  VALUES (p_service, p_audit_type, p_actor, p_ip, p_user_id,
          jsonb_build_object('scope', p_scope, 'sessionId', v_session, 'reset', p_reset));

  RETURN QUERY SELECT v_session, false;
END
$$;
