-- The security review (issue 7).

-- Lockout keys are now named by login (an unknown login counts like a known one) and by client network: the counters
-- of the earlier key format (`user:<id>`, `ip:<address>`) are dropped, which also ends the locks "for good" of that
-- format. Attempts refused while a key is locked are counted apart: they reach no check and lengthen no wait.
DELETE FROM auth_failure;
ALTER TABLE auth_failure ADD COLUMN refused integer NOT NULL DEFAULT 0;
CREATE INDEX auth_failure_last_failure_idx ON auth_failure (last_failure_at);

-- A reset code dies after 5 wrong tries, like an operation token.
ALTER TABLE password_reset ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0;

-- The validation gate (advancedSecurity). Once a service has had a token validator who can receive a token, its
-- gate is armed for good: if no validator can be reached later, sensitive changes wait for an operator (CLI) instead
-- of applying at once. Services that have such a validator today are armed now.
ALTER TABLE service ADD COLUMN approval_armed_at timestamptz;
UPDATE service s SET approval_armed_at = now()
WHERE EXISTS (
  SELECT 1 FROM pcc_user u
  WHERE u.service_name = s.service_name AND u.is_token_validator AND u.deleted_at IS NULL AND u.state = 'delivered'
    AND u.activation_state = 'enabled' AND u.phone_number IS NOT NULL AND u.phone_confirmed
);
-- Who may validate an operation: a token validator with the SMS token, or only an operator (no validator reachable).
ALTER TABLE operation ADD COLUMN approval text NOT NULL DEFAULT 'sms' CHECK (approval IN ('sms', 'operator'));
