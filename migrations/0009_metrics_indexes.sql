-- /metrics reads the task queue, the outbox backlog and the running lockouts at every scrape, in one query. These
-- partial indexes keep that query proportional to what is open (tasks not yet done or canceled, messages not yet
-- sent, keys that hold a lock), however long the history grows.
CREATE INDEX task_open_state_idx ON task (state, execution_date) WHERE state NOT IN ('done', 'canceled');
CREATE INDEX outbox_unsent_state_idx ON outbox (state, created_at) WHERE state <> 'sent';
CREATE INDEX auth_failure_locked_idx ON auth_failure (locked_until) WHERE locked_until IS NOT NULL;
