-- A user's live sessions had no bound. One password (2FA off, or from a whitelisted network) logged in again and
-- again opened one more each time, 20 a second from one address under the default rate limit, each living up to 12
-- hours; and every login of the service counts its connected users over all the live sessions, under the service's
-- row lock (`userLimitConcurrentSession`): with 18,500 of them each login's count took 5 ms, and the service's logins
-- queued behind it (test/sessions.test.ts reproduces the growth).
--
-- `open_login_session` now takes the most live sessions a user holds (USER_SESSIONS_MAX): a login that would go beyond
-- it ends the user's oldest live sessions, audited as `session.ended` with reason `userSessionLimit`. Under a quota,
-- the service's lock makes the bound exact; without one, logins of the same user at the same moment may each leave one
-- more until the next.
--
-- It also ends the user's expired sessions, as of their expiry (reason `expired`). A session past its idle timeout
-- kept `ended_at` empty until its purge, 30 days later, among the unended sessions the indexes of live ones hold: a
-- user logging in slower than USER_SESSIONS_MAX per timeout (every 2 s where the service's timeout is 1 s) escaped a
-- cap on live sessions alone, and his rows piled up. With 400,000 of them, the cap's statement read all of them, and
-- PostgreSQL's statistics, skewed by them, turned it and the quota's count into sequential scans of every unended
-- session: a login took 165 ms on his service and 68 ms on another account's (found by an attack on a running server;
-- test/sessions.test.ts reproduces the pile-up). The login reads his unended sessions once, in a plain loop (an
-- `IN (…)` let a generic plan join them by hash), and leaves him no more than his live ones, so the next login reads at
-- most USER_SESSIONS_MAX and the one it adds. The retention ends the expired sessions of users who do not log in again.
--
-- The function with the earlier arguments (migrations/0011, 0015) stays for instances not yet upgraded; the rest of
-- this one is migrations/0015's.
CREATE FUNCTION open_login_session(
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
