"""The team store against a real PostgreSQL: schema, roles, the chain, export.

Every test connects by URL with a role's password, as a team member would, to a fresh
database of the session's throwaway cluster (`pgcluster.py`). Roles: `store_owner` ran
`init`; `runner` is in runbook_runner; `alice` in both groups; `bob` and `carol` in
runbook_approver; `dave` in neither. What is asserted is what the database itself enforces:
raw SQL from a role's own session, not only our client, is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgcluster import OWNER, require_psycopg
from pgruns import GATE, SNAPSHOT, SNAPSHOT_SHA, refusal, sha, start_run, wait_at_gate

from runbook_lang.errors import StoreError
from runbook_lang.store import RunRef
from runbook_lang.store.chain import ZERO
from runbook_lang.store.files import LocalStore, new_run_id
from runbook_lang.store.pg import PgStore


def verify(run_dir: Path):
    """`runbook verify` of an exported run directory, offline."""
    run_dir = Path(run_dir)
    return LocalStore().verify(RunRef(run_dir.name, str(run_dir), run_dir / "transcript.jsonl"))

psycopg = require_psycopg()


# ---------------------------------------------------------------------- schema and roles


def test_init_twice_is_a_noop(pg_empty_db):
    with PgStore.connect(pg_empty_db(OWNER)) as store:
        assert store.init() == (0, 3)
        before = catalog(store)
        assert store.init() == (3, 3)
        assert catalog(store) == before
        rows = store.conn.execute("SELECT version, name FROM runbook.schema_version "
                                  "ORDER BY 1").fetchall()
        assert rows == [(1, "team_store"), (2, "seals_and_signed_decisions"),
                        (3, "whole_logs")]


def test_init_migrates_a_store_of_an_older_version(pg_empty_db, monkeypatch):
    from runbook_lang.store.pg import schema

    every = schema.migrations()
    with PgStore.connect(pg_empty_db(OWNER)) as store:
        monkeypatch.setattr(schema, "migrations", lambda: every[:2])
        assert store.init() == (0, 2)  # what an older runbook-lang created
        monkeypatch.setattr(schema, "migrations", lambda: every)
        assert store.init() == (2, 3)
        functions = {row[0] for row in store.conn.execute(
            "SELECT routine_name FROM information_schema.routines "
            "WHERE routine_schema = 'runbook'")}
    assert "log_whole" in functions


def catalog(store: PgStore) -> list:
    """What init creates: tables, functions, triggers and privileges in schema runbook."""
    return store.conn.execute("""
        SELECT 'rel', c.relname, c.relkind::text, coalesce(c.relacl::text, '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'runbook'
        UNION ALL
        SELECT 'fn', p.proname, p.prosecdef::text, coalesce(p.proacl::text, '')
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'runbook'
        UNION ALL
        SELECT 'trigger', t.tgname || ' on ' || c.relname, t.tgenabled::text, ''
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'runbook' AND NOT t.tgisinternal
        ORDER BY 1, 2, 3""").fetchall()


def test_triggers_fire_also_in_replication_mode(pg_empty_db):
    with PgStore.connect(pg_empty_db(OWNER)) as store:
        store.init()
        modes = {row[2] for row in catalog(store) if row[0] == "trigger"}
    assert modes == {"A"}  # ENABLE ALWAYS: session_replication_role cannot skip them


def test_a_newer_schema_is_refused(pg_store):
    with PgStore.connect(pg_store(OWNER)) as owner:
        owner.conn.execute("INSERT INTO runbook.schema_version (version, name, tool) "
                           "VALUES (4, 'from_the_future', '9.0')")
        with pytest.raises(StoreError) as error:
            owner.init()
    assert "schema is version 4, newer than this runbook" in refusal(error)
    assert "upgrade runbook-lang" in refusal(error)
    with pytest.raises(StoreError, match="newer than this runbook"):
        PgStore.open(pg_store("runner"))


def test_a_database_without_a_store_says_to_init(pg_empty_db):
    with pytest.raises(StoreError) as error:
        PgStore.open(pg_empty_db("runner"))
    assert "holds no runbook store: run `runbook store init` as its owner" in refusal(error)


def test_init_by_a_role_that_may_not_create_says_what_it_needs(pg_empty_db):
    with PgStore.connect(pg_empty_db("runner")) as store, pytest.raises(StoreError) as error:
        store.init()
    assert "`store init` needs the database's owner" in refusal(error)


def test_group_roles_cannot_log_in(pg_store):
    with PgStore.connect(pg_store(OWNER)) as owner:
        rows = owner.conn.execute(
            "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'runbook\\_%' "
            "ORDER BY 1").fetchall()
    assert rows == [("runbook_approver", False), ("runbook_runner", False)]


def test_group_roles_hold_exactly_their_privileges(pg_store):
    with PgStore.connect(pg_store(OWNER)) as owner:
        tables = owner.conn.execute("""
            SELECT grantee, table_name, privilege_type FROM information_schema.table_privileges
             WHERE table_schema = 'runbook' AND grantee LIKE 'runbook\\_%'
               AND privilege_type <> 'SELECT' ORDER BY 1, 2, 3""").fetchall()
        columns = owner.conn.execute("""
            SELECT grantee, table_name, column_name, privilege_type
              FROM information_schema.column_privileges
             WHERE table_schema = 'runbook' AND grantee LIKE 'runbook\\_%'
               AND privilege_type = 'UPDATE' ORDER BY 1, 2, 3""").fetchall()
        functions = owner.conn.execute("""
            SELECT grantee, routine_name FROM information_schema.routine_privileges
             WHERE routine_schema = 'runbook' AND grantee <> %s ORDER BY 1, 2""",
                                       (OWNER,)).fetchall()
        readable = owner.conn.execute("""
            SELECT count(*) FROM information_schema.table_privileges
             WHERE table_schema = 'runbook' AND privilege_type = 'SELECT'
               AND grantee = 'runbook_approver'""").fetchone()
    runner = "runbook_runner"
    assert tables == [(runner, t, "INSERT") for t in
                      ("output_chunks", "outputs", "processes", "records", "runs", "seals")]
    assert columns == [(runner, "outputs", "sha256", "UPDATE"),
                       (runner, "outputs", "size", "UPDATE"),
                       (runner, "processes", "ended", "UPDATE")]
    assert functions == [("runbook_approver", "approve"), ("runbook_approver", "decide"),
                         *[(runner, f) for f in ("line_json", "lock_backends", "lock_holder",
                                                 "log_whole", "sync", "try_lock", "unlock")]]
    assert readable == (11,)  # every table of the store, schema_version included


def test_a_role_with_neither_group_can_do_nothing(pg_store, pg_as, pg_paused):
    dave = PgStore.connect(pg_store("dave"))
    try:
        with pytest.raises(StoreError) as error:
            dave.runs()
        assert "role dave may not list runs" in refusal(error)
        for attempt in (lambda: dave.create_run(new_run_id(), "x", "x", SNAPSHOT, "h"),
                        lambda: dave.approve(pg_paused, GATE),
                        lambda: dave.lock("deploy.runbook", "production", "r", {}),
                        lambda: dave.records(pg_paused)):
            with pytest.raises(StoreError, match="role dave may not"):
                attempt()
    finally:
        dave.close()


# ---------------------------------------------------------------------- the chain


def test_records_come_back_as_the_exact_bytes(pg_as):
    writer = start_run(pg_as("runner"))
    record = writer.append("command_finished", step="one", tail="é ☃ \u0000 \"quoted\"\n",
                           exit_code=0)
    writer.sync()
    lines = pg_as("bob").records(writer.run_id)
    assert len(lines) == 2
    assert json.loads(lines[1]) == record
    assert sha(lines[1]) == writer.head
    assert json.loads(lines[1])["prev"] == sha(lines[0])


@pytest.mark.parametrize("appends, seen_before_sync", [
    ("lazy", True), ("durable", True), ("batched", False)])
def test_every_append_policy_writes_the_same_chain(pg_as, tmp_path, appends, seen_before_sync):
    runner, reader = pg_as("runner"), pg_as("bob")
    writer = runner.create_run(new_run_id(), "deploy.runbook", "deploy.runbook", SNAPSHOT,
                               "host-a", appends=appends)
    writer.append("run_started", sha256=SNAPSHOT_SHA)
    writer.sync()
    records = [writer.append("step_started", step=f"s{n}", attempt=1) for n in range(3)]
    # What another machine sees of a step in progress, before its sync.
    assert len(reader.records(writer.run_id)) == (4 if seen_before_sync else 1)
    writer.sync()
    lines = reader.records(writer.run_id)
    assert [json.loads(line) for line in lines[1:]] == records
    assert reader.head(writer.run_id) == (4, writer.head)
    assert verify(reader.export(writer.run_id, tmp_path / "run")).ok


def test_a_batch_the_store_refuses_is_refused_whole(pg_as):
    runner = pg_as("runner")
    writer = runner.create_run(new_run_id(), "deploy.runbook", "deploy.runbook", SNAPSHOT,
                               "host-a", appends="batched")
    writer.append("run_started", sha256=SNAPSHOT_SHA)
    writer.sync()
    writer.append("note", text="one")
    # Someone else writes record 1 first: the batch no longer fits the chain.
    insert(pg_as("alice"), writer.run_id, 1, pg_as("bob").head(writer.run_id)[1])
    writer.append("note", text="two")
    with pytest.raises(StoreError, match="already written"):
        writer.sync()
    assert len(runner.records(writer.run_id)) == 2
    with pytest.raises(ValueError, match="closed"):
        writer.append("note", text="three")


def insert(store: PgStore, run_id: str, seq: int, prev: str, **extra) -> None:
    """A raw INSERT of a well-formed line with these seq and prev: only the chain can refuse."""
    line = json.dumps({"seq": seq, "time": "2026-01-01T00:00:00.000Z", "run_id": run_id,
                       "event": "note", "prev": prev, **extra}).encode()
    store.conn.execute("INSERT INTO runbook.records (run_id, seq, prev, line, hash, event, "
                       "written) VALUES (%s, %s, %s, %s, '', '', now())",
                       (run_id, seq, prev, line))


def test_a_wrong_prev_is_refused_by_the_database(pg_as):
    runner = pg_as("runner")
    writer = start_run(runner)
    with pytest.raises(psycopg.Error) as error:
        insert(runner, writer.run_id, 1, ZERO)
    assert error.value.sqlstate == "RB002"
    assert "record 1 of run" in str(error.value) and "does not chain" in str(error.value)


def test_a_seq_gap_is_refused_by_the_database(pg_as):
    runner = pg_as("runner")
    writer = start_run(runner)
    with pytest.raises(psycopg.Error) as error:
        insert(runner, writer.run_id, 2, writer.head)
    assert error.value.sqlstate == "RB002"
    assert "does not follow: record 1 is missing" in str(error.value)


def test_a_second_record_with_the_same_seq_is_refused(pg_as):
    runner = pg_as("runner")
    writer = start_run(runner)
    insert(runner, writer.run_id, 1, writer.head)
    with pytest.raises(psycopg.errors.UniqueViolation):
        insert(runner, writer.run_id, 1, writer.head, text="another")


@pytest.mark.parametrize("line, reason", [
    (b'{"seq":1,"time":"t","run_id":"RUN","event":"note","prev":"PREV","seq":2}', "says seq 2"),
    (b'{"seq":1,"time":"t","run_id":"other","event":"note","prev":"PREV"}', "says run_id other"),
    (b'{"seq":1,"time":"t","run_id":"RUN","event":"note","prev":"0"}', "says prev 0"),
    (b'{"seq":1,"time":"t","run_id":"RUN","prev":"PREV"}', "has no event"),
    (b'{"seq":1,"run_id":"RUN","event":"note","prev":"PREV"}', "has no time"),
    (b'{"seq":1,\n"time":"t","run_id":"RUN","event":"note","prev":"PREV"}', "holds a newline"),
    (b'{"seq":1,"time":"t","run_id":"RUN","event":"note","prev":"PREV"', "is not UTF-8 JSON"),
    (b'[1, 2]', "is not a JSON object"),
])
def test_a_line_must_say_what_its_columns_say(pg_as, line, reason):
    runner = pg_as("runner")
    writer = start_run(runner)
    line = line.replace(b"RUN", writer.run_id.encode()).replace(b"PREV", writer.head.encode())
    with pytest.raises(psycopg.Error) as error:
        runner.conn.execute("INSERT INTO runbook.records (run_id, seq, prev, line, hash, event, "
                            "written) VALUES (%s, 1, %s, %s, '', '', now())",
                            (writer.run_id, writer.head, line))
    assert error.value.sqlstate == "RB002"
    assert reason in str(error.value)


def test_the_first_record_must_start_the_run_with_its_snapshot_digest(pg_as):
    runner = pg_as("runner")
    run_id = new_run_id()
    writer = runner.create_run(run_id, "deploy.runbook", "deploy.runbook", SNAPSHOT, "h")
    with pytest.raises(StoreError, match="records sha256 0+, the stored snapshot has"):
        writer.append("run_started", sha256="0" * 64)
    with pytest.raises(StoreError, match="is note, not run_started"):
        writer.append("note", sha256=SNAPSHOT_SHA)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.integers(1, 4), seq=st.integers(0, 6),
       prev=st.sampled_from(["right", "zeros", "earlier", "random"]),
       noise=st.text(max_size=20))
def test_only_the_next_record_chained_to_the_last_is_accepted(pg_runner, length, seq, prev,
                                                             noise):
    """Whatever a client sends, a record lands only at the end of the chain, linked to it."""
    writer = start_run(pg_runner)
    hashes = [writer.head]
    for _ in range(length - 1):
        writer.append("note", text="x")
        hashes.append(writer.head)
    chosen = {"right": hashes[-1], "zeros": ZERO, "random": sha(noise.encode()),
              "earlier": hashes[-2] if len(hashes) > 1 else ZERO}[prev]
    accepted = seq == length and chosen == hashes[-1]
    try:
        insert(pg_runner, writer.run_id, seq, chosen, text=noise)
    except psycopg.Error as error:
        assert not accepted, error
        assert error.sqlstate in ("RB002", "23505")
    else:
        assert accepted
    assert len(pg_runner.records(writer.run_id)) == length + accepted


CHANGES = [
    "UPDATE runbook.records SET line = convert_to('{}', 'UTF8') WHERE run_id = %(run)s",
    "DELETE FROM runbook.records WHERE run_id = %(run)s",
    "TRUNCATE runbook.records CASCADE",
    "UPDATE runbook.decisions SET approver = 'carol' WHERE run_id = %(run)s",
    "DELETE FROM runbook.decisions WHERE run_id = %(run)s",
    "UPDATE runbook.output_chunks SET data = '' WHERE run_id = %(run)s",
    "DELETE FROM runbook.output_chunks WHERE run_id = %(run)s",
    "UPDATE runbook.runs SET snapshot = '' WHERE run_id = %(run)s",
    "DELETE FROM runbook.runs WHERE run_id = %(run)s",
]


@pytest.mark.parametrize("role", ["runner", "alice", "bob", OWNER])
def test_no_role_changes_or_deletes_what_was_recorded(pg_as, pg_paused, role):
    runner = pg_as("runner")
    log = runner.reopen(pg_paused).open_log("output/00001-one.stdout.log")
    log.take(b"output\n")
    log.finish()
    pg_as("alice").approve(pg_paused, GATE, reason="fine")
    store = pg_as(role)
    for statement in CHANGES:
        with pytest.raises(psycopg.Error) as error:
            store.conn.execute(statement, {"run": pg_paused})
        # The owner's statements reach the triggers; everyone else lacks the privilege.
        assert error.value.sqlstate == ("RB001" if role == OWNER else "42501"), statement
    assert len(pg_as("bob").records(pg_paused)) == 4
    assert [d.approver for d in runner.decisions(pg_paused)] == ["alice"]


def test_the_owner_cannot_move_a_head_back_or_set_a_status(pg_as, pg_paused):
    owner = pg_as(OWNER)
    for statement, message in [
            ("UPDATE runbook.heads SET records = 1, hash = %(h)s", "only moves forward"),
            ("UPDATE runbook.runs SET status = 'succeeded'", "status follows from its records"),
            ("DELETE FROM runbook.heads", "refused")]:
        first = pg_as("runner").records(pg_paused)[0]
        with pytest.raises(psycopg.Error, match=message):
            owner.conn.execute(statement, {"h": sha(first)})


# ---------------------------------------------------------------------- status and export


def test_the_database_derives_a_runs_status_from_its_records(pg_as):
    runner = pg_as("runner")
    writer = start_run(runner)
    assert runner.runs()[0].status == "running"
    wait_at_gate(writer)
    assert [(r.run_id, r.status, r.operator) for r in pg_as("bob").runs()] == \
        [(writer.run_id, "paused", "runner")]
    writer.append("run_resumed", operator={"user": "alice", "host": "host-b"}, torn=None)
    assert runner.runs()[0].status == "running"
    writer.append("run_finished", status="succeeded", exit_code=0)
    assert runner.runs()[0].status == "succeeded"


def test_runs_from_every_machine_newest_first(pg_as):
    first = start_run(pg_as("runner"))
    second = start_run(pg_as("alice"))
    runs = pg_as("bob").runs()
    assert [(r.run_id, r.operator, r.runbook) for r in runs] == [
        (second.run_id, "alice", "deploy.runbook"), (first.run_id, "runner", "deploy.runbook")]
    assert set(runs[0].as_json()) >= {"run_id", "runbook", "status", "started", "operator"}


def test_an_exported_run_verifies_offline(pg_as, pg_paused, tmp_path):
    runner = pg_as("runner")
    writer = runner.reopen(pg_paused)
    writer.append("run_resumed", operator={"user": "runner", "host": "host-b"}, torn=None)
    out_name, err_name = writer.log_names(writer.seq, "one")
    big = bytes(range(256)) * 5000  # 1.2 MB: several chunks
    out, err = writer.open_log(out_name), writer.open_log(err_name)
    out.take(big[:1000])
    out.take(big[1000:])
    out.finish()
    err.finish()
    writer.append("command_finished", step="one", exit_code=0,
                  stdout={"bytes": len(big), "sha256": sha(big), "tail": "", "log": out_name},
                  stderr={"bytes": 0, "sha256": sha(b""), "tail": "", "log": err_name},
                  log=out_name)
    writer.close()
    pg_as("alice").approve(pg_paused, GATE, reason="checked the dashboards", host="laptop")
    dest = pg_as("bob").export(pg_paused, tmp_path / pg_paused)
    checked = verify(dest)
    assert checked.ok, checked.problems
    assert checked.records == 6
    assert (dest / out_name).read_bytes() == big
    assert (dest / err_name).read_bytes() == b""
    assert (dest / "runbook.snapshot").read_bytes() == SNAPSHOT
    assert json.loads((dest / "head").read_text()) == {"seq": 5, "hash": writer.head}
    decision = json.loads((dest / "approvals.jsonl").read_text())
    assert (decision["approver"], decision["reason"], decision["host"], decision["reject"]) == \
        ("alice", "checked the dashboards", "laptop", False)
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    assert oct((dest / "transcript.jsonl").stat().st_mode & 0o777) == "0o600"


def test_export_refuses_to_overwrite(pg_as, pg_paused, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(StoreError, match="already exists and is not an empty directory"):
        pg_as("runner").export(pg_paused, tmp_path / "taken")
    assert (tmp_path / "taken" / "file").read_text() == "mine"


def test_output_logs_are_checked_by_the_database(pg_as, pg_paused):
    runner = pg_as("runner")
    writer = runner.reopen(pg_paused)
    log = writer.open_log("output/00009-one.stdout.log")
    log.take(b"abc")
    log.finish()
    chunk = ("INSERT INTO runbook.output_chunks (run_id, path, n, data) VALUES "
             "(%s, %s, %s, 'x')")
    with pytest.raises(psycopg.Error, match="is closed"):
        runner.conn.execute(chunk, (pg_paused, log.name, 1))
    other = writer.open_log("output/00009-one.stderr.log")
    with pytest.raises(psycopg.Error, match="chunk 1 .* does not follow: chunk 0 is missing"):
        runner.conn.execute(chunk, (pg_paused, other.name, 1))
    runner.conn.execute(chunk, (pg_paused, other.name, 0))
    close = "UPDATE runbook.outputs SET size = %s, sha256 = %s WHERE run_id = %s AND path = %s"
    with pytest.raises(psycopg.Error, match="holds 1 bytes, not 2"):
        runner.conn.execute(close, (2, sha(b"xx"), pg_paused, other.name))
    with pytest.raises(psycopg.Error, match="has sha256 .*, not"):
        runner.conn.execute(close, (1, sha(b"y"), pg_paused, other.name))
    with pytest.raises(StoreError, match="violates check constraint"):
        writer.open_log("output/../../etc/passwd")


def test_a_local_run_goes_into_the_store_and_comes_back_byte_for_byte(ws, pg_as, tmp_path):
    from runbook_lang.store.pg.export import import_run

    result = ws.run("run_basics")
    assert result.exit_code == 0, result.output
    [local] = result.run_dirs()
    runner = pg_as("runner")
    run_id = import_run(runner, local, "run_basics.runbook")
    dest = pg_as("bob").export(run_id, tmp_path / "exported")
    assert files(dest) == files(local)
    assert files(local)["output"]  # the run wrote output logs, and they came back whole
    assert verify(dest).ok


def files(root) -> dict:
    """Every file under root: relative path -> bytes (output logs grouped)."""
    found = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    found["output"] = {k: v for k, v in found.items() if k.startswith("output/")}
    return found


def test_a_tampered_local_run_is_not_imported(ws, pg_as):
    from runbook_lang.store.pg.export import import_run

    result = ws.run("run_basics")
    [local] = result.run_dirs()
    transcript = local / "transcript.jsonl"
    transcript.write_bytes(transcript.read_bytes().replace(b"padded value", b"padded VALUE"))
    with pytest.raises(StoreError, match="does not verify .*; it is not imported"):
        import_run(pg_as("runner"), local, "run_basics.runbook")
    assert pg_as("runner").runs() == []
