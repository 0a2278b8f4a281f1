-- Schema version 1 of the team store (LANGUAGE.md §12).
--
-- Runs with their snapshot, the hash-chained records, output logs in chunks, gate waits and
-- decisions, the head of each run, lock holders and the process groups runs started.
-- The database, not the client, enforces what an audit relies on:
--   * records, output chunks and decisions are append-only for every role: triggers refuse
--     UPDATE, DELETE and TRUNCATE, and stay on under session_replication_role = replica;
--   * each record's seq follows the previous one and its prev is the previous line's hash,
--     both computed here; the line's own fields must agree with its columns;
--   * a decision's approver is session_user, and only a role the gate admits may decide;
--   * a run's status and its gate waits follow from its records, written by the database.
-- Everything lives in the schema `runbook`, owned by the role that ran `store init`.
-- Errors raised here use the SQLSTATE class RB: RB001 append-only, RB002 chain,
-- RB003 decision refused, RB004 invalid request; the client shows their text as it is.
-- The schema itself and runbook.schema_version are created by the client before this file.

DO $roles$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'runbook_runner') THEN
    CREATE ROLE runbook_runner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'runbook_approver') THEN
    CREATE ROLE runbook_approver NOLOGIN;
  END IF;
END
$roles$;

-- ======================================================================= tables

CREATE TABLE runbook.runs (
  run_id       text PRIMARY KEY CHECK (run_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  runbook_id   text NOT NULL CHECK (length(runbook_id) BETWEEN 1 AND 4096),
  runbook_path text NOT NULL,
  sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  snapshot     bytea NOT NULL,
  started      timestamptz NOT NULL,
  updated      timestamptz NOT NULL,
  status       text NOT NULL,
  operator     name NOT NULL,
  host         text NOT NULL,
  -- The snapshot is the runbook as it ran: its digest is what run_started records.
  CONSTRAINT snapshot_digest CHECK (encode(sha256(snapshot), 'hex') = sha256)
);
CREATE INDEX runs_by_start ON runbook.runs (started DESC, run_id DESC);
CREATE INDEX runs_by_runbook ON runbook.runs (runbook_id, started DESC);

-- No foreign key to runs: its row lock on every append costs more than the record. The
-- trigger checks that record 0 belongs to a run, and every later one follows a record.
CREATE TABLE runbook.records (
  run_id  text NOT NULL,
  seq     bigint NOT NULL CHECK (seq >= 0),
  prev    text NOT NULL,
  line    bytea NOT NULL,      -- the exact JSON line as written, without its newline
  hash    text NOT NULL,       -- SHA-256 of line, computed here
  event   text NOT NULL,       -- copied from the line, for queries
  written timestamptz NOT NULL,
  PRIMARY KEY (run_id, seq)
);

CREATE TABLE runbook.heads (
  run_id  text PRIMARY KEY REFERENCES runbook.runs,
  records bigint NOT NULL,
  hash    text NOT NULL,
  synced  timestamptz NOT NULL
);

CREATE TABLE runbook.outputs (
  run_id text NOT NULL REFERENCES runbook.runs,
  path   text NOT NULL CHECK (path ~ '^output/[A-Za-z0-9_.-]{1,255}$' AND path !~ '\.\.'),
  opened timestamptz NOT NULL,
  size   bigint,               -- size and sha256 are set once, when the log is closed
  sha256 text,
  closed timestamptz,
  PRIMARY KEY (run_id, path)
);

CREATE TABLE runbook.output_chunks (
  run_id text NOT NULL,
  path   text NOT NULL,
  n      integer NOT NULL CHECK (n >= 0),
  data   bytea NOT NULL,
  PRIMARY KEY (run_id, path, n),
  FOREIGN KEY (run_id, path) REFERENCES runbook.outputs
);

CREATE TABLE runbook.gate_waits (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id        text NOT NULL,
  gate          text NOT NULL,
  seq           bigint NOT NULL,    -- the gate_waiting record these rules come from
  approvers     text[],             -- NULL: any member of runbook_approver
  require       integer NOT NULL,
  self_approval boolean NOT NULL,
  operator      text,               -- the operator the record names
  approved      text[] NOT NULL,    -- approvals the transcript already counts
  timeout_ms    bigint,
  since         timestamptz NOT NULL,
  closed        timestamptz,
  FOREIGN KEY (run_id, seq) REFERENCES runbook.records
);
CREATE INDEX gate_waits_by_gate ON runbook.gate_waits (run_id, gate, id);

CREATE TABLE runbook.decisions (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id    text NOT NULL REFERENCES runbook.runs,
  gate      text NOT NULL,
  wait_id   bigint NOT NULL REFERENCES runbook.gate_waits,
  decision  text NOT NULL CHECK (decision IN ('approve', 'reject')),
  reason    text NOT NULL,
  decided   timestamptz NOT NULL,
  host      text,
  method    text NOT NULL CHECK (method IN ('approve-command', 'terminal', 'flag')),
  approver  name NOT NULL,
  signature text,
  -- Each role decides once per gate of a run.
  UNIQUE (run_id, gate, approver)
);

CREATE TABLE runbook.locks (
  lock_key    bigint PRIMARY KEY,
  runbook_id  text NOT NULL,
  environment text,
  run_id      text,
  holder      jsonb NOT NULL,       -- what the runner says of itself (user, host, pid)
  role        name NOT NULL,        -- session_user of the holding session
  backend     integer NOT NULL,     -- its backend pid, to find it in pg_locks
  since       timestamptz NOT NULL
);

CREATE TABLE runbook.processes (
  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id   text NOT NULL REFERENCES runbook.runs,
  lock_key bigint NOT NULL,
  host     text NOT NULL,
  pgid     integer NOT NULL CHECK (pgid > 0),
  start    text NOT NULL,           -- the group leader's start time, as its host tells it
  recorded timestamptz NOT NULL,
  ended    timestamptz
);
CREATE INDEX processes_open ON runbook.processes (lock_key) WHERE ended IS NULL;

-- ======================================================================= append-only

CREATE FUNCTION runbook.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on runbook.% is refused: the team store keeps its records unchanged',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'RB001';
END
$$;

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON runbook.records
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON runbook.output_chunks
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON runbook.decisions
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER no_delete BEFORE DELETE ON runbook.runs
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER no_delete BEFORE DELETE ON runbook.heads
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER no_delete BEFORE DELETE ON runbook.outputs
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER no_delete BEFORE DELETE ON runbook.gate_waits
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();
CREATE TRIGGER no_delete BEFORE DELETE ON runbook.processes
  FOR EACH ROW EXECUTE FUNCTION runbook.refuse_change();

DO $truncate$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['runs', 'records', 'heads', 'outputs', 'output_chunks',
                           'gate_waits', 'decisions', 'processes'] LOOP
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON runbook.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION runbook.refuse_change()', t);
  END LOOP;
END
$truncate$;

-- ======================================================================= runs

-- Who started a run and when is the database's word, not the client's.
CREATE FUNCTION runbook.runs_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.started := clock_timestamp();
  NEW.updated := NEW.started;
  NEW.status := 'created';
  NEW.operator := session_user;
  RETURN NEW;
END
$$;
CREATE TRIGGER runs_insert BEFORE INSERT ON runbook.runs
  FOR EACH ROW EXECUTE FUNCTION runbook.runs_insert();

-- Only the records trigger moves a run's status; nothing else about a run ever changes.
CREATE FUNCTION runbook.runs_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() < 2
     OR (NEW.run_id, NEW.runbook_id, NEW.runbook_path, NEW.sha256, NEW.snapshot, NEW.started,
         NEW.operator, NEW.host)
        IS DISTINCT FROM (OLD.run_id, OLD.runbook_id, OLD.runbook_path, OLD.sha256,
                          OLD.snapshot, OLD.started, OLD.operator, OLD.host) THEN
    RAISE EXCEPTION 'UPDATE on runbook.runs is refused: a run''s status follows from its '
      'records' USING ERRCODE = 'RB001';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER runs_update BEFORE UPDATE ON runbook.runs
  FOR EACH ROW EXECUTE FUNCTION runbook.runs_update();

-- ======================================================================= records

-- A line as JSON, for reading its fields (parsed once, as jsonb). PostgreSQL's JSON types
-- refuse the escape \u0000, which output tails may hold: it is read as U+FFFD instead
-- (escaped backslashes are first spelled \u005c, so that `\\u0000`, a backslash and the
-- text u0000, stays what it is). The stored line is never changed. No SET clause: this
-- small SQL function is inlined into its callers, which pin their own search_path.
CREATE FUNCTION runbook.line_json(p_line bytea) RETURNS jsonb
LANGUAGE sql STABLE STRICT AS $$
  SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.convert_from(p_line, 'UTF8'),
    '\\', '\u005c'), '\u0000', '\ufffd')::jsonb
$$;

-- Runs as the inserting role (a runner), with its search_path pinned so that no object of
-- the runner's own can stand in for the functions and operators used here.
CREATE FUNCTION runbook.records_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  doc jsonb;
  expected text;
  run_sha text;
BEGIN
  NEW.hash := encode(sha256(NEW.line), 'hex');
  NEW.written := clock_timestamp();
  -- One line: JSON allows a newline between tokens, a transcript line does not.
  IF position('\x0a'::bytea IN NEW.line) > 0 THEN
    RAISE EXCEPTION 'record % of run % holds a newline', NEW.seq, NEW.run_id
      USING ERRCODE = 'RB002';
  END IF;
  BEGIN
    doc := runbook.line_json(NEW.line);
  EXCEPTION WHEN data_exception THEN  -- bad UTF-8, bad JSON
    RAISE EXCEPTION 'record % of run % is not UTF-8 JSON', NEW.seq, NEW.run_id
      USING ERRCODE = 'RB002';
  END;
  IF jsonb_typeof(doc) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'record % of run % is not a JSON object', NEW.seq, NEW.run_id
      USING ERRCODE = 'RB002';
  END IF;
  IF jsonb_typeof(doc -> 'seq') IS DISTINCT FROM 'number'
     OR doc ->> 'seq' IS DISTINCT FROM NEW.seq::text THEN
    RAISE EXCEPTION 'record % of run % says seq %', NEW.seq, NEW.run_id,
      coalesce(doc ->> 'seq', 'nothing') USING ERRCODE = 'RB002';
  END IF;
  IF doc ->> 'run_id' IS DISTINCT FROM NEW.run_id THEN
    RAISE EXCEPTION 'record % of run % says run_id %', NEW.seq, NEW.run_id,
      coalesce(doc ->> 'run_id', 'nothing') USING ERRCODE = 'RB002';
  END IF;
  IF doc ->> 'prev' IS DISTINCT FROM NEW.prev THEN
    RAISE EXCEPTION 'record % of run % says prev %, not %', NEW.seq, NEW.run_id,
      coalesce(doc ->> 'prev', 'nothing'), NEW.prev USING ERRCODE = 'RB002';
  END IF;
  IF jsonb_typeof(doc -> 'time') IS DISTINCT FROM 'string' THEN
    RAISE EXCEPTION 'record % of run % has no time', NEW.seq, NEW.run_id
      USING ERRCODE = 'RB002';
  END IF;
  NEW.event := doc ->> 'event';
  IF NEW.event IS NULL THEN
    RAISE EXCEPTION 'record % of run % has no event', NEW.seq, NEW.run_id
      USING ERRCODE = 'RB002';
  END IF;
  IF NEW.seq = 0 THEN
    SELECT sha256 INTO run_sha FROM runbook.runs WHERE run_id = NEW.run_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'there is no run %', NEW.run_id USING ERRCODE = 'RB004';
    END IF;
    IF NEW.event <> 'run_started' THEN
      RAISE EXCEPTION 'record % of run % is %, not run_started', NEW.seq, NEW.run_id,
        NEW.event USING ERRCODE = 'RB002';
    END IF;
    IF doc ->> 'sha256' IS DISTINCT FROM run_sha THEN
      RAISE EXCEPTION 'record % of run % records sha256 %, the stored snapshot has %',
        NEW.seq, NEW.run_id, coalesce(doc ->> 'sha256', 'nothing'), run_sha
        USING ERRCODE = 'RB002';
    END IF;
    expected := repeat('0', 64);
  ELSE
    SELECT hash INTO expected FROM runbook.records
      WHERE run_id = NEW.run_id AND seq = NEW.seq - 1;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'record % of run % does not follow: record % is missing', NEW.seq,
        NEW.run_id, NEW.seq - 1 USING ERRCODE = 'RB002';
    END IF;
  END IF;
  IF NEW.prev <> expected THEN
    RAISE EXCEPTION 'record % of run % does not chain: its prev is not the hash of %',
      NEW.seq, NEW.run_id,
      CASE WHEN NEW.seq = 0 THEN 'nothing (64 zeros)' ELSE format('record %s', NEW.seq - 1) END
      USING ERRCODE = 'RB002';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER records_check BEFORE INSERT ON runbook.records
  FOR EACH ROW EXECUTE FUNCTION runbook.records_check();

-- What the database derives from the records: a run's status, and the gate it waits at with
-- that gate's rules (the function approving reads them).
CREATE FUNCTION runbook.records_follow() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  doc jsonb := runbook.line_json(NEW.line);
  at timestamptz := clock_timestamp();
BEGIN
  IF NEW.event IN ('run_started', 'run_resumed') THEN
    UPDATE runbook.runs SET status = 'running', updated = at WHERE run_id = NEW.run_id;
  ELSIF NEW.event = 'run_finished' THEN
    UPDATE runbook.runs SET status = coalesce(doc ->> 'status', 'interrupted'), updated = at
      WHERE run_id = NEW.run_id;
    -- A paused or interrupted run still waits at its gate; any other end closes the wait.
    IF coalesce(doc ->> 'status', 'interrupted') NOT IN ('paused', 'interrupted') THEN
      UPDATE runbook.gate_waits SET closed = at WHERE run_id = NEW.run_id AND closed IS NULL;
    END IF;
  ELSIF NEW.event = 'gate_waiting' THEN
    UPDATE runbook.gate_waits SET closed = at WHERE run_id = NEW.run_id AND closed IS NULL;
    BEGIN
      INSERT INTO runbook.gate_waits (run_id, gate, seq, approvers, require, self_approval,
                                      operator, approved, timeout_ms, since)
      VALUES (
        NEW.run_id, doc ->> 'gate', NEW.seq,
        CASE jsonb_typeof(doc -> 'approvers') WHEN 'array'
          THEN ARRAY(SELECT jsonb_array_elements_text(doc -> 'approvers')) END,
        coalesce((doc ->> 'require')::integer, 1),
        coalesce((doc ->> 'self_approval')::boolean, true),
        doc ->> 'operator',
        CASE jsonb_typeof(doc -> 'approved') WHEN 'array'
          THEN ARRAY(SELECT jsonb_array_elements_text(doc -> 'approved'))
          ELSE '{}'::text[] END,
        (doc ->> 'timeout_ms')::bigint,
        at);
    EXCEPTION WHEN not_null_violation OR invalid_text_representation
                   OR numeric_value_out_of_range THEN
      RAISE EXCEPTION 'record % of run %: a gate_waiting record needs gate, and require, '
        'self_approval and timeout_ms of their types (%)', NEW.seq, NEW.run_id, SQLERRM
        USING ERRCODE = 'RB002';
    END;
  ELSE
    UPDATE runbook.gate_waits SET closed = at
      WHERE run_id = NEW.run_id AND closed IS NULL
        AND gate = coalesce(doc ->> 'gate', doc ->> 'step');
  END IF;
  RETURN NULL;
END
$$;
-- Only the events it acts on call it: most records cost no second look.
CREATE TRIGGER records_follow AFTER INSERT ON runbook.records
  FOR EACH ROW WHEN (NEW.event IN ('run_started', 'run_resumed', 'run_finished',
                                   'gate_waiting', 'step_finished', 'gate_rejected',
                                   'gate_timed_out'))
  EXECUTE FUNCTION runbook.records_follow();

-- Gate waits are written by records_follow only, and only ever closed.
CREATE FUNCTION runbook.gate_waits_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() < 2
     OR (TG_OP = 'UPDATE' AND (OLD.closed IS NOT NULL OR NEW.closed IS NULL
         OR (NEW.run_id, NEW.gate, NEW.seq, NEW.approvers, NEW.require, NEW.self_approval,
             NEW.operator, NEW.approved, NEW.timeout_ms, NEW.since)
            IS DISTINCT FROM (OLD.run_id, OLD.gate, OLD.seq, OLD.approvers, OLD.require,
                              OLD.self_approval, OLD.operator, OLD.approved, OLD.timeout_ms,
                              OLD.since))) THEN
    RAISE EXCEPTION '% on runbook.gate_waits is refused: gate waits follow from the records',
      TG_OP USING ERRCODE = 'RB001';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER gate_waits_guard BEFORE INSERT OR UPDATE ON runbook.gate_waits
  FOR EACH ROW EXECUTE FUNCTION runbook.gate_waits_guard();

-- ======================================================================= heads

-- The head seals what a runner synced: it only moves forward, to a record that exists.
CREATE FUNCTION runbook.heads_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND (NEW.run_id <> OLD.run_id OR NEW.records < OLD.records) THEN
    RAISE EXCEPTION 'the head of run % only moves forward', OLD.run_id USING ERRCODE = 'RB001';
  END IF;
  IF NOT EXISTS (SELECT FROM runbook.records WHERE run_id = NEW.run_id
                 AND seq = NEW.records - 1 AND hash = NEW.hash) THEN
    RAISE EXCEPTION 'the head of run % must name its record % and that record''s hash',
      NEW.run_id, NEW.records - 1 USING ERRCODE = 'RB002';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER heads_guard BEFORE INSERT OR UPDATE ON runbook.heads
  FOR EACH ROW EXECUTE FUNCTION runbook.heads_guard();

-- Make everything appended so far durable and point the head at the last record.
-- The commit is synchronous whatever the server's or the session's default.
CREATE FUNCTION runbook.sync(p_run text) RETURNS runbook.heads
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  h runbook.heads;
BEGIN
  PERFORM set_config('synchronous_commit', 'on', true);
  INSERT INTO runbook.heads (run_id, records, hash, synced)
    SELECT run_id, seq + 1, hash, clock_timestamp() FROM runbook.records
      WHERE run_id = p_run ORDER BY seq DESC LIMIT 1
    ON CONFLICT (run_id) DO UPDATE
      SET records = EXCLUDED.records, hash = EXCLUDED.hash, synced = EXCLUDED.synced
      WHERE runbook.heads.records <> EXCLUDED.records
    RETURNING * INTO h;
  IF h.run_id IS NULL THEN
    SELECT * INTO h FROM runbook.heads WHERE run_id = p_run;
  END IF;
  RETURN h;
END
$$;

-- ======================================================================= output logs

CREATE FUNCTION runbook.outputs_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  total bigint;
  digest text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.opened := clock_timestamp();
    NEW.size := NULL;
    NEW.sha256 := NULL;
    NEW.closed := NULL;
    RETURN NEW;
  END IF;
  IF OLD.closed IS NOT NULL
     OR (NEW.run_id, NEW.path, NEW.opened) IS DISTINCT FROM (OLD.run_id, OLD.path, OLD.opened)
  THEN
    RAISE EXCEPTION 'output log % of run % is closed; it cannot change', OLD.path, OLD.run_id
      USING ERRCODE = 'RB001';
  END IF;
  SELECT coalesce(sum(length(data)), 0) INTO total FROM runbook.output_chunks
    WHERE run_id = OLD.run_id AND path = OLD.path;
  IF NEW.size IS DISTINCT FROM total THEN
    RAISE EXCEPTION 'output log % of run % holds % bytes, not %', OLD.path, OLD.run_id, total,
      coalesce(NEW.size::text, 'no size') USING ERRCODE = 'RB002';
  END IF;
  -- The whole log's digest, where it fits in memory comfortably (logs past 256 MiB are
  -- checked by `verify` after an export, against the digest their command record holds).
  IF total <= 268435456 THEN
    SELECT encode(sha256(coalesce(string_agg(data, ''::bytea ORDER BY n), ''::bytea)), 'hex')
      INTO digest FROM runbook.output_chunks WHERE run_id = OLD.run_id AND path = OLD.path;
    IF NEW.sha256 IS DISTINCT FROM digest THEN
      RAISE EXCEPTION 'output log % of run % has sha256 %, not %', OLD.path, OLD.run_id,
        digest, coalesce(NEW.sha256, 'none') USING ERRCODE = 'RB002';
    END IF;
  END IF;
  NEW.closed := clock_timestamp();
  RETURN NEW;
END
$$;
CREATE TRIGGER outputs_guard BEFORE INSERT OR UPDATE ON runbook.outputs
  FOR EACH ROW EXECUTE FUNCTION runbook.outputs_guard();

CREATE FUNCTION runbook.chunks_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  was_closed timestamptz;
BEGIN
  SELECT closed INTO was_closed FROM runbook.outputs WHERE run_id = NEW.run_id
    AND path = NEW.path;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'run % has no output log %', NEW.run_id, NEW.path USING ERRCODE = 'RB004';
  END IF;
  IF was_closed IS NOT NULL THEN
    RAISE EXCEPTION 'output log % of run % is closed', NEW.path, NEW.run_id
      USING ERRCODE = 'RB001';
  END IF;
  IF NEW.n > 0 AND NOT EXISTS (SELECT FROM runbook.output_chunks WHERE run_id = NEW.run_id
                               AND path = NEW.path AND n = NEW.n - 1) THEN
    RAISE EXCEPTION 'chunk % of output log % of run % does not follow: chunk % is missing',
      NEW.n, NEW.path, NEW.run_id, NEW.n - 1 USING ERRCODE = 'RB002';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER chunks_check BEFORE INSERT ON runbook.output_chunks
  FOR EACH ROW EXECUTE FUNCTION runbook.chunks_check();

-- ======================================================================= decisions

-- Every decision passes here, whoever inserts it (runbook.approve, or the owner by hand):
-- the approver is the authenticated role, and the gate's recorded rules must admit it.
CREATE FUNCTION runbook.decisions_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  who text := session_user;
  r runbook.runs;
  w runbook.gate_waits;
  other text;
  first timestamptz;
BEGIN
  NEW.approver := who;
  NEW.decided := clock_timestamp();
  IF NOT pg_has_role(session_user, 'runbook_approver', 'MEMBER') THEN
    RAISE EXCEPTION 'role % may not decide on gates: it is not a member of runbook_approver',
      who USING ERRCODE = 'RB003';
  END IF;
  SELECT * INTO r FROM runbook.runs WHERE run_id = NEW.run_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'there is no run %', NEW.run_id USING ERRCODE = 'RB004';
  END IF;
  -- Locking the wait makes concurrent votes on one gate take turns.
  SELECT * INTO w FROM runbook.gate_waits
    WHERE run_id = NEW.run_id AND gate = NEW.gate AND closed IS NULL
    ORDER BY id DESC LIMIT 1 FOR UPDATE;
  IF NOT FOUND THEN
    SELECT gate INTO other FROM runbook.gate_waits
      WHERE run_id = NEW.run_id AND closed IS NULL ORDER BY id DESC LIMIT 1;
    IF other IS NULL THEN
      RAISE EXCEPTION 'run % is not waiting at a gate (it is %)', NEW.run_id, r.status
        USING ERRCODE = 'RB003';
    END IF;
    RAISE EXCEPTION 'run % is not waiting at gate %; it waits at gate %', NEW.run_id,
      NEW.gate, other USING ERRCODE = 'RB003';
  END IF;
  SELECT min(since) INTO first FROM runbook.gate_waits
    WHERE run_id = NEW.run_id AND gate = NEW.gate;
  IF w.timeout_ms IS NOT NULL
     AND NEW.decided > first + w.timeout_ms * interval '1 millisecond' THEN
    RAISE EXCEPTION 'gate % of run % timed out (it waited since %)', NEW.gate, NEW.run_id,
      first USING ERRCODE = 'RB003';
  END IF;
  IF w.approvers IS NOT NULL AND NOT who = ANY (w.approvers) THEN
    RAISE EXCEPTION 'role % may not decide on gate % (approvers: %)', who, NEW.gate,
      array_to_string(w.approvers, ', ') USING ERRCODE = 'RB003';
  END IF;
  IF NOT w.self_approval AND (who = r.operator::text OR who = w.operator) THEN
    RAISE EXCEPTION 'role % started run % and gate % has self_approval false', who,
      NEW.run_id, NEW.gate USING ERRCODE = 'RB003';
  END IF;
  IF who = ANY (w.approved) OR EXISTS (
       SELECT FROM runbook.decisions d
         WHERE d.run_id = NEW.run_id AND d.gate = NEW.gate AND d.approver = who) THEN
    RAISE EXCEPTION 'role % has already decided on gate % of run %', who, NEW.gate,
      NEW.run_id USING ERRCODE = 'RB003';
  END IF;
  NEW.wait_id := w.id;
  RETURN NEW;
END
$$;
CREATE TRIGGER decisions_check BEFORE INSERT ON runbook.decisions
  FOR EACH ROW EXECUTE FUNCTION runbook.decisions_check();

-- The one way to decide: no approver argument, the database knows who is asking.
CREATE FUNCTION runbook.approve(p_run text, p_gate text, p_decision text,
                                p_reason text DEFAULT '', p_host text DEFAULT NULL,
                                p_method text DEFAULT 'approve-command',
                                p_signature text DEFAULT NULL)
RETURNS runbook.decisions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  d runbook.decisions;
BEGIN
  PERFORM set_config('synchronous_commit', 'on', true);
  INSERT INTO runbook.decisions (run_id, gate, decision, reason, host, method, signature)
    VALUES (p_run, p_gate, p_decision, coalesce(p_reason, ''), p_host, p_method, p_signature)
    RETURNING * INTO d;
  RETURN d;
END
$$;

-- ======================================================================= locks

-- pg_locks shows a bigint advisory key as its two unsigned halves.
CREATE FUNCTION runbook.lock_backends(p_key bigint) RETURNS SETOF integer
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT pid FROM pg_locks
   WHERE locktype = 'advisory' AND granted AND objsubid = 1
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND classid = ((p_key >> 32) & 4294967295)::oid
     AND objid = (p_key & 4294967295)::oid
$$;

-- Take the run lock for this session, or say it is taken. A holder's row left by a session
-- that is gone is returned as the takeover. One session never holds a lock twice.
CREATE FUNCTION runbook.try_lock(p_key bigint, p_runbook text, p_environment text,
                                 p_run text, p_holder jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
DECLARE
  previous runbook.locks;
BEGIN
  IF pg_backend_pid() IN (SELECT runbook.lock_backends(p_key))
     OR NOT pg_try_advisory_lock(p_key) THEN
    RETURN jsonb_build_object('acquired', false);
  END IF;
  DELETE FROM runbook.locks WHERE lock_key = p_key RETURNING * INTO previous;
  INSERT INTO runbook.locks VALUES (p_key, p_runbook, p_environment, p_run, p_holder,
                                    session_user, pg_backend_pid(), clock_timestamp());
  RETURN jsonb_build_object('acquired', true, 'takeover',
    CASE WHEN previous.lock_key IS NOT NULL THEN to_jsonb(previous) END);
END
$$;

CREATE FUNCTION runbook.unlock(p_key bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
BEGIN
  IF pg_backend_pid() NOT IN (SELECT runbook.lock_backends(p_key)) THEN
    RETURN false;
  END IF;
  DELETE FROM runbook.locks WHERE lock_key = p_key AND backend = pg_backend_pid();
  RETURN pg_advisory_unlock(p_key);
END
$$;

-- Who holds a lock now: its holder's row when the session that wrote it still holds the
-- lock; else only the backend and its role (a holder between locking and writing its row).
CREATE FUNCTION runbook.lock_holder(p_key bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, runbook, pg_temp AS $$
  SELECT coalesce(
    (SELECT to_jsonb(l) FROM runbook.locks l
      WHERE l.lock_key = p_key AND l.backend IN (SELECT runbook.lock_backends(p_key))),
    (SELECT jsonb_build_object('backend', a.pid, 'role', a.usename)
       FROM pg_stat_activity a WHERE a.pid IN (SELECT runbook.lock_backends(p_key))
       LIMIT 1))
$$;

-- ======================================================================= processes

CREATE FUNCTION runbook.processes_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.recorded := clock_timestamp();
    NEW.ended := NULL;
    RETURN NEW;
  END IF;
  IF OLD.ended IS NOT NULL OR NEW.ended IS NULL
     OR (NEW.run_id, NEW.lock_key, NEW.host, NEW.pgid, NEW.start, NEW.recorded)
        IS DISTINCT FROM (OLD.run_id, OLD.lock_key, OLD.host, OLD.pgid, OLD.start,
                          OLD.recorded) THEN
    RAISE EXCEPTION 'a process group''s record only ever gets its end'
      USING ERRCODE = 'RB001';
  END IF;
  NEW.ended := clock_timestamp();
  RETURN NEW;
END
$$;
CREATE TRIGGER processes_guard BEFORE INSERT OR UPDATE ON runbook.processes
  FOR EACH ROW EXECUTE FUNCTION runbook.processes_guard();

-- ======================================================================= hardening

-- Triggers that fire also for a session in replication mode (session_replication_role).
DO $always$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT tg.tgname, c.relname FROM pg_trigger tg
             JOIN pg_class c ON c.oid = tg.tgrelid
             JOIN pg_namespace s ON s.oid = c.relnamespace
            WHERE s.nspname = 'runbook' AND NOT tg.tgisinternal LOOP
    EXECUTE format('ALTER TABLE runbook.%I ENABLE ALWAYS TRIGGER %I', t.relname, t.tgname);
  END LOOP;
END
$always$;

-- ======================================================================= privileges

REVOKE ALL ON SCHEMA runbook FROM PUBLIC;
GRANT USAGE ON SCHEMA runbook TO runbook_runner, runbook_approver;
REVOKE ALL ON ALL TABLES IN SCHEMA runbook FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA runbook FROM PUBLIC;

GRANT SELECT ON ALL TABLES IN SCHEMA runbook TO runbook_runner, runbook_approver;
GRANT INSERT ON runbook.runs, runbook.records, runbook.outputs, runbook.output_chunks,
                runbook.processes TO runbook_runner;
GRANT UPDATE (size, sha256) ON runbook.outputs TO runbook_runner;
GRANT UPDATE (ended) ON runbook.processes TO runbook_runner;
GRANT EXECUTE ON FUNCTION runbook.sync(text), runbook.line_json(bytea),
                          runbook.lock_backends(bigint),
                          runbook.try_lock(bigint, text, text, text, jsonb),
                          runbook.unlock(bigint), runbook.lock_holder(bigint)
  TO runbook_runner;
GRANT EXECUTE ON FUNCTION runbook.approve(text, text, text, text, text, text, text)
  TO runbook_approver;
