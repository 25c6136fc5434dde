-- Private Cloud users of a service, their credentials, certified-interface sessions, and the operations that wait for
-- an SMS token before a sensitive change is applied.
CREATE TABLE pcc_user (
  user_id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name              text NOT NULL REFERENCES service (service_name),
  name                      text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
  email                     text,
  first_name                text,
  last_name                 text,
  phone_number              text CHECK (phone_number ~ '^\+[1-9][0-9]{0,3}\.[0-9]{4,14}$'),
  phone_confirmed           boolean NOT NULL DEFAULT false,
  is_token_validator        boolean NOT NULL DEFAULT false,
  state                     text NOT NULL DEFAULT 'creating' CHECK (state IN ('creating', 'deleting', 'delivered', 'error')),
  activation_state          text NOT NULL DEFAULT 'enabled'
                              CHECK (activation_state IN ('disabled', 'disabling', 'enabled', 'enabling', 'toDisable', 'toEnable')),
  can_manage_ip_fail_overs  boolean NOT NULL DEFAULT false,
  can_manage_network        boolean NOT NULL DEFAULT false,
  can_manage_rights         boolean NOT NULL DEFAULT false,
  encryption_right          boolean NOT NULL DEFAULT false,
  full_admin_ro             boolean NOT NULL DEFAULT false,
  nsx_right                 boolean NOT NULL DEFAULT false,
  receive_alerts            boolean NOT NULL DEFAULT false,
  password_hash             text,
  password_changed_at       timestamptz,
  -- AES-256-GCM, key id inside the text, bound to the user id
  totp_secret_ciphertext    text,
  totp_enabled_at           timestamptz,
  created_at                timestamptz NOT NULL DEFAULT now(),
  deleted_at                timestamptz
);
CREATE UNIQUE INDEX pcc_user_live_name_uq ON pcc_user (service_name, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX pcc_user_service_idx ON pcc_user (service_name, user_id);

-- Earlier password hashes, for the password policy's historyCheck.
CREATE TABLE password_history (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name   text NOT NULL REFERENCES service (service_name),
  user_id        bigint NOT NULL REFERENCES pcc_user (user_id),
  password_hash  text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_history_user_idx ON password_history (user_id, created_at DESC);

-- Certified-interface sessions: only the SHA-256 of the token is stored.
CREATE TABLE user_session (
  session_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash    bytea NOT NULL UNIQUE,
  service_name  text NOT NULL REFERENCES service (service_name),
  user_id       bigint NOT NULL REFERENCES pcc_user (user_id),
  scope         text NOT NULL CHECK (scope IN ('full', 'credentialsRenewal')),
  ip            inet,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  ended_at      timestamptz,
  end_reason    text
);
CREATE INDEX user_session_user_idx ON user_session (user_id) WHERE ended_at IS NULL;

-- Each accepted TOTP step, once: a replayed code is refused by the primary key, whatever the instance.
CREATE TABLE totp_used (
  user_id  bigint NOT NULL REFERENCES pcc_user (user_id),
  step     bigint NOT NULL,
  used_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, step)
);

-- A TOTP secret offered to a user, waiting for the code that proves the app was set up.
CREATE TABLE enrollment (
  enrollment_id      text PRIMARY KEY,
  service_name       text NOT NULL REFERENCES service (service_name),
  user_id            bigint NOT NULL REFERENCES pcc_user (user_id),
  secret_ciphertext  text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  used_at            timestamptz
);

-- A sensitive change waiting for operation validation by SMS token.
CREATE TABLE operation (
  operation_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name          text NOT NULL REFERENCES service (service_name),
  task_id               bigint UNIQUE REFERENCES task (task_id),  -- NULL: a confirmation that applies no task
  kind                  text NOT NULL,
  user_id               bigint REFERENCES pcc_user (user_id),
  requested_by          text NOT NULL,
  token_hash            bytea,
  token_expires_at      timestamptz NOT NULL,
  failed_attempts       integer NOT NULL DEFAULT 0,
  state                 text NOT NULL CHECK (state IN ('pending', 'validated', 'expired', 'blocked', 'canceled')),
  validated_by_user_id  bigint REFERENCES pcc_user (user_id),
  validated_at          timestamptz,
  sends                 integer NOT NULL DEFAULT 0,
  last_sent_at          timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operation_pending_idx ON operation (token_expires_at) WHERE state = 'pending';
CREATE INDEX operation_service_idx ON operation (service_name, created_at);

-- Messages to the outside, drained by the worker. The body is sealed until sent, then erased.
CREATE TABLE outbox (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name     text REFERENCES service (service_name),
  channel          text NOT NULL CHECK (channel IN ('sms', 'email')),
  recipient        text NOT NULL,
  body_ciphertext  text,
  operation_id     bigint REFERENCES operation (operation_id),
  state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  locked_by        text,
  locked_until     timestamptz,
  sent_at          timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE state IN ('pending', 'sending');
-- the daily cap of SMS per number
CREATE INDEX outbox_recipient_idx ON outbox (recipient, created_at);

-- Failed logins and token attempts, per user and per client IP, shared by every instance.
CREATE TABLE auth_failure (
  key              text PRIMARY KEY,
  failures         integer NOT NULL DEFAULT 0,
  last_failure_at  timestamptz NOT NULL,
  locked_until     timestamptz
);

-- "Password lost": a reset token, sent by SMS or e-mail, that opens a credentials-renewal session.
CREATE TABLE password_reset (
  token_hash    bytea PRIMARY KEY,
  service_name  text NOT NULL REFERENCES service (service_name),
  user_id       bigint NOT NULL REFERENCES pcc_user (user_id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  used_at       timestamptz
);

-- The password policy of a service (OVH's dedicatedCloud.passwordPolicy), with OVH-like defaults.
CREATE TABLE password_policy (
  service_name                text PRIMARY KEY REFERENCES service (service_name),
  min_length                  integer NOT NULL DEFAULT 12,
  max_length                  integer NOT NULL DEFAULT 64,
  digit_mandatory             boolean NOT NULL DEFAULT true,
  letter_mandatory            boolean NOT NULL DEFAULT true,
  lowercase_letter_mandatory  boolean NOT NULL DEFAULT true,
  uppercase_letter_mandatory  boolean NOT NULL DEFAULT true,
  special_mandatory           boolean NOT NULL DEFAULT true,
  denied_chars                jsonb NOT NULL DEFAULT '[]'::jsonb,
  history_check               integer NOT NULL DEFAULT 5,
  validity_period             integer NOT NULL DEFAULT 0
);

-- The audit log can be read per user too.
ALTER TABLE audit_event ADD COLUMN user_id bigint;

-- A queued message wakes the workers like a due task does.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('task_due', 'outbox');
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify_trg AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
