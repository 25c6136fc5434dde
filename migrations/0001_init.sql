-- Accounts own services. Authentication columns arrive with the authentication migration.
CREATE TABLE account (
  account_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  login       text NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service (
  service_name                   text PRIMARY KEY CHECK (service_name ~ '^[a-z0-9][a-z0-9.-]{1,62}$'),
  account_id                     bigint NOT NULL REFERENCES account (account_id),
  description                    text NOT NULL DEFAULT '',
  state                          text NOT NULL DEFAULT 'delivered',
  advanced_security              boolean NOT NULL DEFAULT true,
  user_access_policy             text NOT NULL DEFAULT 'open' CHECK (user_access_policy IN ('filtered', 'open')),
  user_limit_concurrent_session  integer NOT NULL DEFAULT 50 CHECK (user_limit_concurrent_session >= 0),
  user_logout_policy             text NOT NULL DEFAULT 'first' CHECK (user_logout_policy IN ('first', 'last')),
  user_session_timeout           integer NOT NULL DEFAULT 0 CHECK (user_session_timeout >= 0),
  two_fa_state                   text NOT NULL DEFAULT 'disabled' CHECK (two_fa_state IN ('disabled', 'enabled')),
  created_at                     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_account_idx ON service (account_id);

-- The 2FA bypass list. `network` is derived from ip + cidr_netmask so that the database itself refuses a second live
-- entry for one network, whatever the number of instances racing.
CREATE TABLE two_fa_whitelist (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name  text NOT NULL REFERENCES service (service_name),
  ip            inet NOT NULL,
  cidr_netmask  smallint NOT NULL,
  network       cidr GENERATED ALWAYS AS (set_masklen(ip, cidr_netmask)::cidr) STORED,
  description   text NOT NULL,
  state         text NOT NULL CHECK (state IN ('enabled', 'enabling', 'error', 'migrating', 'removed', 'removing')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (host(ip)::inet = ip AND cidr_netmask >= 0 AND cidr_netmask <= CASE WHEN family(ip) = 4 THEN 32 ELSE 128 END)
);
CREATE UNIQUE INDEX two_fa_whitelist_live_network_uq ON two_fa_whitelist (service_name, network) WHERE state <> 'removed';
CREATE INDEX two_fa_whitelist_service_idx ON two_fa_whitelist (service_name, id);

-- dedicatedCloud.Task, every field of OVH's model, plus what the worker needs to claim and apply it.
CREATE TABLE task (
  task_id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name            text NOT NULL REFERENCES service (service_name),
  name                    text NOT NULL,
  type                    text NOT NULL,
  state                   text NOT NULL CHECK (state IN ('canceled', 'doing', 'done', 'error', 'fixing', 'toCancel',
                            'toCreate', 'todo', 'unknown', 'waitingForChilds', 'waitingTodo')),
  progress                smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  description             text,
  created_by              text,
  created_from            text,
  execution_date          timestamptz NOT NULL DEFAULT now(),
  last_modification_date  timestamptz,
  end_date                timestamptz,
  maintenance_date_from   timestamptz,
  maintenance_date_to     timestamptz,
  datacenter_id           bigint,
  filer_id                bigint,
  host_id                 bigint,
  network                 text,
  network_access_id       bigint,
  order_id                bigint,
  parent_task_id          bigint REFERENCES task (task_id),
  user_id                 bigint,
  vlan_id                 bigint,
  -- what the handler needs (ids of the rows it changes); never a secret
  payload                 jsonb NOT NULL DEFAULT '{}'::jsonb,
  attempts                integer NOT NULL DEFAULT 0,
  locked_by               text,
  locked_until            timestamptz,
  last_error              text,
  created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_service_idx ON task (service_name, task_id);
-- the worker's queue: only tasks that may still need work are in it
CREATE INDEX task_due_idx ON task (execution_date) WHERE state IN ('todo', 'doing');

-- Append-only record of every change and decision (read by the audit log endpoint).
CREATE TABLE audit_event (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service_name  text REFERENCES service (service_name),
  type          text NOT NULL,
  actor         text,
  ip            inet,
  data          jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_event_service_idx ON audit_event (service_name, created_at);

-- Wakes the workers of every instance as soon as a task becomes due.
CREATE FUNCTION task_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state = 'todo' THEN
    PERFORM pg_notify('task_due', NEW.task_id::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER task_notify_trg AFTER INSERT OR UPDATE OF state, execution_date ON task
  FOR EACH ROW EXECUTE FUNCTION task_notify();
