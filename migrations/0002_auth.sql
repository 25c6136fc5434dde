-- The account holder's password (argon2id), checked on the consumer-key validation page.
ALTER TABLE account ADD COLUMN password_hash text;

-- OVH applications: an application key (public) and its secret, stored encrypted (AES-256-GCM, key id in the text).
CREATE TABLE application (
  application_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id          bigint NOT NULL REFERENCES account (account_id),
  application_key     text NOT NULL UNIQUE,
  secret_ciphertext   text NOT NULL,
  name                text NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL DEFAULT now(),
  revoked_at          timestamptz
);

-- Consumer keys: only their SHA-256 is stored. `validation_token_hash` is the secret of the validation link, distinct
-- from the consumer key so that the key never appears in a URL.
CREATE TABLE credential (
  credential_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  application_id         bigint NOT NULL REFERENCES application (application_id),
  account_id             bigint REFERENCES account (account_id),
  consumer_key_hash      bytea NOT NULL UNIQUE,
  validation_token_hash  bytea UNIQUE,
  state                  text NOT NULL CHECK (state IN ('pendingValidation', 'validated', 'refused', 'expired')),
  rules                  jsonb NOT NULL,
  allowed_ips            jsonb,            -- ipBlock strings, NULL: any address
  redirection            text,
  created_at             timestamptz NOT NULL DEFAULT now(),
  -- a pending request not validated by then expires
  validation_expires_at  timestamptz NOT NULL,
  validated_at           timestamptz,
  -- end of validity chosen at validation; NULL is unlimited
  expires_at             timestamptz,
  last_use               timestamptz,
  revoked_at             timestamptz
);
CREATE INDEX credential_application_idx ON credential (application_id);

-- OAuth2 client credentials (Swagger UI, curl). The client secret is random, so a SHA-256 of it is enough.
CREATE TABLE oauth_client (
  client_id      text PRIMARY KEY,
  account_id     bigint NOT NULL REFERENCES account (account_id),
  secret_hash    bytea NOT NULL,
  name           text NOT NULL DEFAULT '',
  created_at     timestamptz NOT NULL DEFAULT now(),
  revoked_at     timestamptz
);

CREATE TABLE oauth_token (
  token_hash   bytea PRIMARY KEY,
  client_id    text NOT NULL REFERENCES oauth_client (client_id),
  account_id   bigint NOT NULL REFERENCES account (account_id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX oauth_token_expiry_idx ON oauth_token (expires_at);
