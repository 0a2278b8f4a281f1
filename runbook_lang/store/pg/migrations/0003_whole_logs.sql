-- Schema version 3: a command's small output log in one statement.
--
-- Most logs are a few lines that arrive before the command ends. Opening the log, storing
-- its one chunk and closing it with its size and digest were three statements at every
-- step; `runbook.log_whole` does the same three, with the same checks (the outputs_guard
-- and chunks_check triggers run as before), and is as harmless to send twice.

CREATE FUNCTION runbook.log_whole(p_run text, p_path text, p_data bytea, p_size bigint,
                                  p_sha256 text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, runbook, pg_temp AS $$
BEGIN
  INSERT INTO runbook.outputs (run_id, path, opened) VALUES (p_run, p_path, now())
    ON CONFLICT (run_id, path) DO NOTHING;
  IF length(p_data) > 0 THEN
    INSERT INTO runbook.output_chunks (run_id, path, n, data)
      SELECT p_run, p_path, 0, p_data
       WHERE NOT EXISTS (SELECT FROM runbook.outputs WHERE run_id = p_run AND path = p_path
                                                      AND closed IS NOT NULL)
      ON CONFLICT (run_id, path, n) DO NOTHING;
  END IF;
  UPDATE runbook.outputs SET size = p_size, sha256 = p_sha256
   WHERE run_id = p_run AND path = p_path AND closed IS NULL;
END
$$;

REVOKE ALL ON FUNCTION runbook.log_whole(text, text, bytea, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION runbook.log_whole(text, text, bytea, bigint, text)
  TO runbook_runner;
