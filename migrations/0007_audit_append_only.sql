-- The audit trail is append-only: UPDATE, DELETE and TRUNCATE of audit_event are refused by the database itself, so
-- that no code path (a bug, an injected statement) can rewrite history. The one way out is the operator's
-- `audit purge` command, which deletes old events inside a transaction that sets pcc.audit_purge and records its own
-- event. (A database owner can still drop the trigger: a separate, less privileged role for the service closes that.)
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('pcc.audit_purge', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();

-- Paging newest first, per service and per user of a service.
CREATE INDEX audit_event_service_id_idx ON audit_event (service_name, id DESC);
CREATE INDEX audit_event_user_id_idx ON audit_event (service_name, user_id, id DESC) WHERE user_id IS NOT NULL;
