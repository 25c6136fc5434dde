-- A login's success gives its network key (`ip:…`) its attempt back with an UPDATE joined to the keys it was given.
-- Under the function's generic plan PostgreSQL expects ten of them and joins by hash over a sequential scan of
-- `auth_failure`: every login read every row, and a network key stays there (at zero failures) until it is forgotten
-- after a quiet day, one per address that logged in. With 1,841 rows the statement took 0.6 ms (EXPLAIN ANALYZE; 215
-- µs on average over a bench run, pg_stat_statements), growing with the addresses seen in a day. The keys now also
-- bound the table's side (`f.key = ANY (…)`): an index scan of the primary key, 0.07 ms.
--
-- The rest of the function is migrations/0017's. The 14-argument one (migrations/0015), for instances not yet
-- upgraded, is left as it is.
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
  p_refund_locks   timestamptz[], -- the lock this attempt set on each of those, if any (NULL: none)
  p_user_max       integer        -- the most live sessions the user holds, this one included
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
  v_expires   timestamptz;
  v_kept      integer;
BEGIN
  IF p_totp_step IS NOT NULL THEN
    -- A replay, even in parallel: the second insert waits for the first and then finds the step taken.
    INSERT INTO totp_used (user_id, step, used_at) VALUES (p_user_id, p_totp_step, p_now) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      RETURN QUERY SELECT NULL::bigint, true;
      RETURN;
    END IF;
  END IF;

  -- The keys in key order first, as an admission takes them (migrations/0015).
  PERFORM 1 FROM auth_failure AS f WHERE f.key = ANY (p_clear_keys || p_refund_keys) ORDER BY f.key FOR UPDATE;
  DELETE FROM auth_failure WHERE key = ANY (p_clear_keys);
  UPDATE auth_failure AS f
     SET failures = greatest(f.failures - 1, 0),
         locked_until = CASE WHEN f.locked_until = r.own THEN NULL ELSE f.locked_until END
    FROM unnest(p_refund_keys, p_refund_locks) AS r(key, own)
   WHERE f.key = ANY (p_refund_keys) AND f.key = r.key;

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

  -- The user's own sessions, most recent first: his expired ones end as of their expiry; of his live ones, the first
  -- p_user_max - 1 stay and the older ones end, each audited, to make room for this one.
  v_kept := 0;
  FOR v_victim, v_expires IN
    SELECT s.session_id, s.expires_at FROM user_session AS s
     WHERE s.user_id = p_user_id AND s.ended_at IS NULL
     ORDER BY s.created_at DESC, s.session_id DESC
  LOOP
    IF v_expires <= p_now THEN
      UPDATE user_session AS us SET ended_at = us.expires_at, end_reason = 'expired'
       WHERE us.session_id = v_victim AND us.ended_at IS NULL;
    ELSIF v_kept < p_user_max - 1 THEN
      v_kept := v_kept + 1;
    ELSE
      UPDATE user_session AS us SET ended_at = p_now, end_reason = 'userSessionLimit'
       WHERE us.session_id = v_victim AND us.ended_at IS NULL;
      IF FOUND THEN
        INSERT INTO audit_event (service_name, type, actor, ip, user_id, data)
        VALUES (p_service, 'session.ended', p_actor, p_ip, p_user_id,
                jsonb_build_object('reason', 'userSessionLimit', 'sessions', 1, 'sessionId', v_victim, 'limit', p_user_max));
      END IF;
    END IF;
  END LOOP;

  INSERT INTO user_session (token_hash, service_name, user_id, scope, ip, created_at, last_seen_at, expires_at)
  VALUES (p_token_hash, p_service, p_user_id, p_scope, p_ip, p_now, p_now, p_expires_at)
  RETURNING user_session.session_id INTO v_session;

  INSERT INTO audit_event (service_name, type, actor, ip, user_id, data)
  VALUES (p_service, p_audit_type, p_actor, p_ip, p_user_id,
          jsonb_build_object('scope', p_scope, 'sessionId', v_session, 'reset', p_reset));

  RETURN QUERY SELECT v_session, false;
END
$$;
