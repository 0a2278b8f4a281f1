-- Schema version 2: what the store needs behind the store seam (LANGUAGE.md §12, §13).
--
--   * seals: the operator's signature over the head at each signed stop (the local store's
--     `head.sig`), append-only; the newest row of a run is its seal;
--   * decisions keep a signed decision's statement and the client's decision id, so that a
--     signature comes back byte for byte and a resumed run records each decision once;
--   * runbook.decide: runbook.approve with those two, still without an approver argument.

CREATE TABLE runbook.seals (
  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id   text NOT NULL REFERENCES runbook.runs,
  signed   text NOT NULL,
  records  bigint NOT NULL,          -- the head the seal was made at (its record count)
  sealed   timestamptz NOT NULL DEFAULT clock_timestamp(),
  role     name NOT NULL DEFAULT session_user
);
CREATE INDEX seals_by_run ON runbook.seals (run_id, id DESC);

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON runbook.seals
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON runbook.seals
  FOR EACH STATEMENT EXECUTE FUNCTION runbook.refuse_change();
ALTER TABLE runbook.seals ENABLE ALWAYS TRIGGER append_only;
ALTER TABLE runbook.seals ENABLE ALWAYS TRIGGER no_truncate;

-- Who sealed and when is the database's word; a seal names the run's synced head.
CREATE FUNCTION runbook.seals_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
BEGIN
  NEW.sealed := clock_timestamp();
  NEW.role := session_user;
  IF NOT EXISTS (SELECT FROM runbook.heads WHERE run_id = NEW.run_id
                 AND records = NEW.records) THEN
    RAISE EXCEPTION 'a seal of run % must be made at its synced head', NEW.run_id
      USING ERRCODE = 'RB002';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER seals_insert BEFORE INSERT ON runbook.seals
  FOR EACH ROW EXECUTE FUNCTION runbook.seals_insert();
ALTER TABLE runbook.seals ENABLE ALWAYS TRIGGER seals_insert;

ALTER TABLE runbook.decisions ADD COLUMN statement text, ADD COLUMN client_id text;

CREATE FUNCTION runbook.decide(p_run text, p_gate text, p_decision text, p_reason text,
                               p_host text, p_method text, p_statement text,
                               p_signature text, p_client_id text)
RETURNS runbook.decisions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  d runbook.decisions;
BEGIN
  PERFORM set_config('synchronous_commit', 'on', true);
  INSERT INTO runbook.decisions (run_id, gate, decision, reason, host, method, statement,
                                 signature, client_id)
    VALUES (p_run, p_gate, p_decision, coalesce(p_reason, ''), p_host, p_method,
            p_statement, p_signature, p_client_id)
    RETURNING * INTO d;
  RETURN d;
END
$$;

REVOKE ALL ON runbook.seals FROM PUBLIC;
REVOKE ALL ON FUNCTION runbook.decide(text, text, text, text, text, text, text, text, text),
                       runbook.seals_insert() FROM PUBLIC;
GRANT SELECT ON runbook.seals TO runbook_runner, runbook_approver;
GRANT INSERT ON runbook.seals TO runbook_runner;
GRANT EXECUTE ON FUNCTION runbook.decide(text, text, text, text, text, text, text, text, text)
  TO runbook_approver;
