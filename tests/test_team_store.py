"""The team store through the real `runbook` command, against a real PostgreSQL cluster
(LANGUAGE.md §12): runs, approvals by database role, locks across working directories, the
orphan rule, export and offline verify, a lost connection, an unreachable store.

Every role logs in with its password over TCP (SCRAM), as a team's would.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import Workspace, events, wait_for
from pgcluster import OWNER, password, require_psycopg

from runbook_lang.executors.local import group_alive

psycopg = require_psycopg()

DEPLOY = '''runbook "Deploy" {}

param environment: string = "staging"

step one "One" {
  run "echo hello from one; echo to stderr >&2"
}

gate go "Go ahead" {
  approvers ["alice", "bob"]
  require 2
}

step two "Two" {
  run "echo two"
}
'''

SLOW = '''runbook "Slow" {}

param pause: string = "3"

step one "One" {
  run "touch started; sleep {{ pause }}; echo done > finished"
}

step two "Two" {
  run "touch second"
}
'''

QUICK = SLOW.replace('= "3"', '= "0"')


@pytest.fixture
def team(pg_store, pg_cluster):
    """Run `runbook` as a database role: `team(ws, role, *args)`; the URL holds the role's
    password, as people keep it in RUNBOOK_STORE."""

    def runbook(ws: Workspace, role: str, *args: str, env: dict | None = None, **kw):
        return ws.runbook(*args, env={"RUNBOOK_STORE": pg_store(role), **(env or {})}, **kw)

    runbook.url = pg_store  # type: ignore[attr-defined]
    runbook.cluster = pg_cluster  # type: ignore[attr-defined]
    runbook.database = pg_store("x").rsplit("/", 1)[1]  # type: ignore[attr-defined]
    return runbook


def write(ws: Workspace, text: str, name: str = "deploy.runbook", where: Path | None = None):
    folder = where or ws.root
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return name


def run_id_of(output: str) -> str:
    for word in output.split():
        if len(word) == 26 and word[8] == "T" and word[19] == "-":
            return word
    raise AssertionError(f"no run id in {output!r}")


def stored_lines(team, run_id: str) -> list[bytes]:
    with team.cluster.admin(team.database) as conn:
        rows = conn.execute("SELECT line FROM runbook.records WHERE run_id = %s ORDER BY seq",
                            (run_id,)).fetchall()
    return [bytes(row[0]) for row in rows]


def everything_stored(team) -> bytes:
    """Every byte the store holds about runs: records, logs, decisions, locks, seals."""
    with team.cluster.admin(team.database) as conn:
        parts = [str(row).encode() for table in ("runs", "records", "output_chunks",
                                                 "decisions", "locks", "processes", "seals")
                 for row in conn.execute(f"SELECT * FROM runbook.{table}").fetchall()]
    return b"\n".join(parts)


# ---------------------------------------------------------------------- set-up


def test_store_init_twice_is_a_noop_and_a_newer_schema_is_refused(ws, pg_empty_db):
    url = pg_empty_db(OWNER)
    first = ws.runbook("store", "init", "--store", url)
    assert first.exit_code == 0, first.output
    assert "created the store at postgresql://store_owner@" in first.stdout
    assert "schema version 3" in first.stdout
    again = ws.runbook("store", "init", "--store", url)
    assert again.exit_code == 0, again.output
    assert "is at schema version 3; nothing to do" in again.stdout
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM runbook.schema_version ORDER BY 1"
                            ).fetchall() == [(1,), (2,), (3,)]
        roles = conn.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN "
                             "('runbook_runner', 'runbook_approver') ORDER BY 1").fetchall()
        assert roles == [("runbook_approver", False), ("runbook_runner", False)]
        conn.execute("INSERT INTO runbook.schema_version (version, name, tool) "
                     "VALUES (99, 'from_the_future', '9.0')")
    newer = ws.runbook("store", "init", "--store", url)
    assert newer.exit_code == 2
    assert "schema is version 99, newer than this runbook" in newer.stderr
    assert "upgrade runbook-lang" in newer.stderr
    history = ws.runbook("history", "--store", url)
    assert history.exit_code == 2 and "newer than this runbook" in history.stderr
    for result in (first, again, newer, history):
        assert password(OWNER) not in result.output
        assert "Traceback" not in result.output


def test_store_commands_need_a_store_url(ws):
    result = ws.runbook("store", "init")
    assert result.exit_code == 2
    assert "give the team store with --store postgresql://" in result.stderr
    result = ws.runbook("history", "--store", "mysql://u:secret@h/db")
    assert result.exit_code == 2
    assert "expected a postgresql:// URL" in result.stderr and "secret" not in result.stderr


def test_an_unreachable_store_is_refused_before_any_step(ws, team):
    from conftest import closed_port

    write(ws, QUICK)
    url = f"postgresql://runner:{password('runner')}@127.0.0.1:{closed_port()}/nowhere"
    result = ws.runbook("run", "deploy.runbook", "--store", url)
    assert result.exit_code == 2, result.output
    assert "cannot connect to the store postgresql://runner@127.0.0.1:" in result.stderr
    assert password("runner") not in result.output
    assert not (ws.root / "started").exists()
    assert not (ws.root / ".runbook").exists()


def test_a_role_with_a_wrong_password_is_refused_without_showing_it(ws, team):
    url = team.url("runner").replace(password("runner"), "not-the-password")
    result = ws.runbook("history", "--store", url)
    assert result.exit_code == 2
    assert "cannot connect to the store" in result.stderr
    assert "password authentication failed" in result.stderr
    assert "not-the-password" not in result.output


# ---------------------------------------------------------------------- runs and approvals


def test_alice_and_bob_approve_from_their_own_connections_and_the_run_resumes(ws, team):
    write(ws, DEPLOY)
    paused = team(ws, "runner", "run", "deploy.runbook")
    assert paused.exit_code == 3, paused.output
    run_id = run_id_of(paused.stdout)
    assert f"runbook approve {run_id} go [--reason TEXT]" in paused.stdout  # no --as needed
    for role in ("alice", "bob"):
        decided = team(ws, role, "approve", run_id, "go", "--reason", f"{role} agrees")
        assert decided.exit_code == 0, decided.output
        assert f"recorded: {role} approves gate go of run {run_id}" in decided.stdout
    resumed = team(ws, "runner", "resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert "approved by alice" in resumed.stdout and "approved by bob" in resumed.stdout
    records = [json.loads(line) for line in stored_lines(team, run_id)]
    started = records[0]
    assert started["operator"]["user"] == "runner"
    assert started["store"]["kind"] == "postgresql" and started["store"]["role"] == "runner"
    assert started["runbook_id"].endswith("deploy.runbook")
    approved = events(records, "gate_approved")
    assert [(r["approver"], r["identity"], r["verified_by"]) for r in approved] == [
        ("alice", "verified", "database role"), ("bob", "verified", "database role")]
    assert records[-1]["event"] == "run_finished" and records[-1]["status"] == "succeeded"
    assert events(records, "run_resumed")[0]["store"]["role"] == "runner"
    verified = team(ws, "carol", "verify", run_id)
    assert verified.exit_code == 0, verified.output
    shown = team(ws, "bob", "show", run_id)
    assert "verified (database role)" in shown.stdout
    # No password anywhere: not in a record, a log, a decision, a lock note.
    stored = everything_stored(team)
    for role in ("runner", "alice", "bob", "carol"):
        assert password(role).encode() not in stored


def test_the_store_url_on_the_command_line_is_recorded_without_its_password(ws, team):
    write(ws, QUICK)
    result = ws.runbook("run", "deploy.runbook", "--store", team.url("runner"))
    assert result.exit_code == 0, result.output
    started = json.loads(stored_lines(team, run_id_of(result.stdout))[0])
    assert started["argv"][-1].startswith("postgresql://runner@127.0.0.1:")
    assert password("runner").encode() not in everything_stored(team)


def test_the_runner_cannot_record_an_approval_as_alice(ws, team):
    write(ws, DEPLOY)
    run_id = run_id_of(team(ws, "runner", "run", "deploy.runbook").stdout)
    as_alice = team(ws, "runner", "approve", run_id, "go", "--as", "alice")
    assert as_alice.exit_code == 2
    assert ("--as alice: this store records decisions as the database role of your "
            "connection, runner") in as_alice.stderr
    as_runner = team(ws, "runner", "approve", run_id, "go")
    assert as_runner.exit_code == 2
    assert "'runner' may not approve gate go" in as_runner.stderr
    # Straight to the database, past the client's checks: refused there too.
    with psycopg.connect(team.url("runner"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO runbook.decisions (run_id, gate, wait_id, decision, "
                         "reason, decided, method, approver) VALUES (%s, 'go', 1, 'approve', "
                         "'', now(), 'approve-command', 'alice')", (run_id,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT runbook.decide(%s, 'go', 'approve', '', NULL, "
                         "'approve-command', NULL, NULL, NULL)", (run_id,))
    with psycopg.connect(team.url("carol"), autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="role carol may not decide on gate go"):
            conn.execute("SELECT runbook.decide(%s, 'go', 'approve', '', NULL, "
                         "'approve-command', NULL, NULL, NULL)", (run_id,))
    with team.cluster.admin(team.database) as conn:
        assert conn.execute("SELECT count(*) FROM runbook.decisions").fetchone() == (0,)


def test_run_as_another_role_is_refused_before_anything_runs(ws, team):
    write(ws, QUICK)
    result = team(ws, "runner", "run", "deploy.runbook", "--as", "alice")
    assert result.exit_code == 2
    assert "--as alice: this store knows you as the database role runner" in result.stderr
    assert not (ws.root / "started").exists()


def test_self_approval_false_compares_the_operators_role(ws, team):
    write(ws, DEPLOY.replace("require 2", "require 1\n  self_approval false"))
    paused = team(ws, "alice", "run", "deploy.runbook", env={"RUNBOOK_USER": "somebody"})
    assert paused.exit_code == 3, paused.output
    run_id = run_id_of(paused.stdout)
    own = team(ws, "alice", "approve", run_id, "go")
    assert own.exit_code == 2
    assert "started run" in own.stderr and "self_approval false" in own.stderr
    assert team(ws, "bob", "approve", run_id, "go").exit_code == 0
    assert team(ws, "alice", "resume", run_id).exit_code == 0


def test_records_cannot_be_updated_or_deleted_by_any_role(ws, team):
    write(ws, QUICK)
    run_id = run_id_of(team(ws, "runner", "run", "deploy.runbook").stdout)
    for role in ("runner", "alice", OWNER):
        with psycopg.connect(team.url(role), autocommit=True) as conn:
            for sql in ("UPDATE runbook.records SET line = line WHERE run_id = %s",
                        "DELETE FROM runbook.records WHERE run_id = %s",
                        "UPDATE runbook.runs SET status = 'succeeded' WHERE run_id = %s",
                        "TRUNCATE runbook.records CASCADE"):
                with pytest.raises(psycopg.Error, match="refused|permission denied"):
                    conn.execute(sql, (run_id,) if "%s" in sql else None)
    assert team(ws, "runner", "verify", run_id).exit_code == 0


# ---------------------------------------------------------------------- export


def test_export_writes_a_run_directory_that_verifies_offline_byte_for_byte(ws, team,
                                                                           tmp_path):
    write(ws, DEPLOY)
    run_id = run_id_of(team(ws, "runner", "run", "deploy.runbook").stdout)
    for role in ("alice", "bob"):
        assert team(ws, role, "approve", run_id, "go").exit_code == 0
    assert team(ws, "runner", "resume", run_id).exit_code == 0
    online = team(ws, "carol", "verify", run_id)
    dest = tmp_path / "exported"
    exported = team(ws, "carol", "store", "export", run_id, str(dest))
    assert exported.exit_code == 0, exported.output
    lines = stored_lines(team, run_id)
    assert (dest / "transcript.jsonl").read_bytes() == b"".join(line + b"\n" for line in lines)
    head = json.loads((dest / "head").read_text())
    assert head["seq"] == len(lines) - 1
    assert (dest / "runbook.snapshot").read_bytes() == (ws.root / "deploy.runbook").read_bytes()
    logs = sorted(p.name for p in (dest / "output").iterdir())
    assert any(name.endswith("-one.stdout.log") for name in logs)
    stdout_log = next(p for p in (dest / "output").iterdir() if p.name.endswith(
        "-one.stdout.log"))
    assert stdout_log.read_bytes() == b"hello from one\n"
    approvals = [json.loads(line) for line in (dest / "approvals.jsonl").read_text().splitlines()]
    assert [a["approver"] for a in approvals] == ["alice", "bob"]
    # Offline: no store at all in the environment.
    offline = ws.runbook("verify", str(dest))
    assert offline.exit_code == 0, offline.output
    assert offline.stdout.splitlines()[1] == online.stdout.splitlines()[1]  # the same head
    # A changed byte is found offline too.
    data = (dest / "transcript.jsonl").read_bytes().replace(b"hello", b"HELLO", 1)
    (dest / "transcript.jsonl").write_bytes(data)
    assert ws.runbook("verify", str(dest)).exit_code == 1
    again = team(ws, "carol", "store", "export", run_id, str(dest))
    assert again.exit_code == 2 and "not an empty directory" in again.stderr


# ---------------------------------------------------------------------- history


def test_history_lists_the_runs_of_every_working_directory(ws, team, tmp_path):
    first, second = Workspace(tmp_path / "laptop"), Workspace(tmp_path / "ci")
    write(first, QUICK, "a.runbook")
    write(second, DEPLOY, "b.runbook")
    assert team(first, "runner", "run", "a.runbook").exit_code == 0
    assert team(second, "alice", "run", "b.runbook").exit_code == 3
    elsewhere = Workspace(tmp_path / "auditor")
    elsewhere.root.mkdir()
    listed = team(elsewhere, "carol", "history")
    assert listed.exit_code == 0, listed.output
    rows = listed.stdout.splitlines()[1:]
    assert [row.split()[1:4] for row in rows] == [["b.runbook", "paused", "alice"],
                                                  ["a.runbook", "succeeded", "runner"]]


# ---------------------------------------------------------------------- locks


def checkout(root: Path, text: str) -> Workspace:
    """A clone of the team's repository on one machine: the runbook at the same place."""
    (root / ".git").mkdir(parents=True)
    write(Workspace(root), text, where=root / "ops")
    return Workspace(root)


def test_two_runs_of_one_runbook_from_two_directories_exactly_one_proceeds(team, tmp_path):
    machines = [checkout(tmp_path / name, SLOW) for name in ("laptop", "ci")]
    procs = [m.start("run", "ops/deploy.runbook", "--store", team.url(role),
                     env={"RUNBOOK_LOCK_DIR": str(m.root / "locks")})
             for m, role in zip(machines, ("runner", "alice"), strict=True)]
    outputs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outputs
    refused = next(out for out, p in zip(outputs, procs, strict=True) if p.returncode == 2)
    assert "refused: another run holds the lock: run " in refused[1]
    assert " by runner" in refused[1] or " by alice" in refused[1]
    assert sum((m.root / "ops" / "started").exists() for m in machines) == 1


def test_the_header_id_is_one_lock_wherever_the_file_lies(team, tmp_path):
    # No repository around them, and at different paths: only the header's id is shared.
    text = SLOW.replace('runbook "Slow" {}', 'runbook "Slow" {\n  id "payments/deploy"\n}')
    machines = [Workspace(tmp_path / name) for name in ("laptop", "ci")]
    for machine, folder in zip(machines, ("ops", "runbooks/prod"), strict=True):
        write(machine, text, where=machine.root / folder)
    procs = [m.start("run", f"{folder}/deploy.runbook", "--store", team.url(role),
                     env={"RUNBOOK_LOCK_DIR": str(m.root / "locks")})
             for m, folder, role in zip(machines, ("ops", "runbooks/prod"),
                                        ("runner", "alice"), strict=True)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 2], outputs
    records = [line for out, _ in outputs for line in out.splitlines()]
    assert records  # both said something
    with team.cluster.admin(team.database) as conn:
        ids = {row[0] for row in conn.execute("SELECT runbook_id FROM runbook.runs")}
    assert ids == {"payments/deploy"}


def kill_runner(team, machine: Workspace) -> int:
    """Start a slow run, `kill -9` its runner mid-command; returns the command's group,
    left running, once the runner's database session is gone."""
    (machine.root / "ops" / "started").unlink(missing_ok=True)
    proc = machine.start("run", "ops/deploy.runbook", "--store", team.url("runner"))
    wait_for(lambda: (machine.root / "ops" / "started").exists(), what="the step to start")
    with team.cluster.admin(team.database) as conn:
        wait_for(lambda: conn.execute("SELECT count(*) FROM runbook.processes WHERE ended "
                                      "IS NULL").fetchone() == (1,), what="the group's row")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        wait_for(lambda: conn.execute("SELECT count(*) FROM runbook.locks l WHERE l.backend "
                                      "IN (SELECT pid FROM pg_stat_activity)").fetchone()
                 == (0,), what="the killed runner's session to end")
        return conn.execute("SELECT pgid FROM runbook.processes WHERE ended IS NULL"
                            ).fetchone()[0]


def stop_group(pgid: int) -> None:
    os.killpg(pgid, signal.SIGKILL)
    wait_for(lambda: not group_alive(pgid, None), what="the group to end")


def test_a_runner_killed_with_kill_9_frees_its_lock(team, tmp_path):
    machine = checkout(tmp_path / "laptop", SLOW.replace('= "3"', '= "30"'))
    other = checkout(tmp_path / "ci", QUICK)
    stop_group(kill_runner(team, machine))
    proceeds = team(other, "alice", "run", "ops/deploy.runbook")
    assert proceeds.exit_code == 0, proceeds.output
    started = json.loads(stored_lines(team, run_id_of(proceeds.stdout))[0])
    assert started["lock_takeover"]["found"] == "stale lock of a run that is gone"
    assert started["lock_takeover"]["user"] == "runner"


def test_a_killed_runs_live_group_blocks_the_next_run_and_names_it(team, tmp_path):
    machine = checkout(tmp_path / "laptop", SLOW.replace('= "3"', '= "30"'))
    other = checkout(tmp_path / "ci", QUICK)
    pgid = kill_runner(team, machine)
    try:
        blocked = team(other, "alice", "run", "ops/deploy.runbook")
        assert blocked.exit_code == 2, blocked.output
        assert f"process group {pgid} is still running on this machine" in blocked.stderr
        assert f"kill -TERM -{pgid}" in blocked.stderr
    finally:
        stop_group(pgid)
    proceeds = team(other, "alice", "run", "ops/deploy.runbook")
    assert proceeds.exit_code == 0, proceeds.output


def test_a_group_left_on_another_machine_refuses_naming_it_until_cleared(team, tmp_path):
    from runbook_lang.store.pg import PgStore, lock_key
    from runbook_lang.store.pg.locks import record_process

    machine = checkout(tmp_path / "ci", QUICK)
    with PgStore.open(team.url("runner")) as store:
        key = lock_key("ops/deploy.runbook", None)
        writer = store.create_run("20260101T000000000Z-abcdef", "ops/deploy.runbook",
                                  "ops/deploy.runbook", b"x", "build-7")
        record_process(store.conn, writer.run_id, key, {"host": "build-7", "pgid": 4242,
                                                        "start": "123"})
    refused = team(machine, "alice", "run", "ops/deploy.runbook")
    assert refused.exit_code == 2
    assert ("process group 4242 on build-7 may still be running, and this machine cannot "
            "check it") in refused.stderr
    assert "runbook store clear 20260101T000000000Z-abcdef" in refused.stderr
    cleared = team(machine, "alice", "store", "clear", "20260101T000000000Z-abcdef")
    assert cleared.exit_code == 0, cleared.output
    assert "process group 4242 on build-7" in cleared.stdout
    assert team(machine, "alice", "run", "ops/deploy.runbook").exit_code == 0


# ---------------------------------------------------------------------- a lost connection


def end_sessions(team) -> int:
    """End the runner's database sessions, as a restart or an administrator would."""
    with team.cluster.admin(team.database) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = %s AND application_name = 'runbook'",
                                (team.database,)).fetchall())


def test_a_dropped_connection_is_retried_and_the_run_completes(ws, team):
    write(ws, SLOW)
    proc = ws.start("run", "deploy.runbook", "--store", team.url("runner"))
    wait_for(lambda: (ws.root / "started").exists(), what="the step to start")
    assert end_sessions(team) == 1
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert (ws.root / "second").exists()
    run_id = run_id_of(out)
    assert team(ws, "runner", "verify", run_id).exit_code == 0
    records = [json.loads(line) for line in stored_lines(team, run_id)]
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert events(records, "step_finished", step="one")[0]["status"] == "succeeded"


def test_a_store_lost_for_good_pauses_the_run_safely_and_resume_completes(ws, team):
    write(ws, SLOW)
    proc = ws.start("run", "deploy.runbook", "--store", team.url("runner"),
                    env={"RUNBOOK_STORE_RETRY": "2"})
    wait_for(lambda: (ws.root / "started").exists(), what="the step to start")
    with team.cluster.admin(team.database) as conn:
        conn.execute("ALTER ROLE runner NOLOGIN")
    try:
        end_sessions(team)
        out, err = proc.communicate(timeout=60)
    finally:
        with team.cluster.admin(team.database) as conn:
            conn.execute("ALTER ROLE runner LOGIN")
    assert proc.returncode == 130, out + err
    assert "stayed unreachable for 2s: the run stops here, safely" in err
    assert f"runbook resume {run_id_of(out)}" in err
    assert password("runner") not in out + err
    assert (ws.root / "finished").exists()  # the step in flight ran to its end
    assert not (ws.root / "second").exists()  # nothing ran unrecorded
    run_id = run_id_of(out)
    # What reached the store before it went is intact; the step's start came after the last
    # sync, as after a crash, and resume takes it over.
    unsealed = team(ws, "runner", "verify", run_id)
    assert unsealed.exit_code == 1 and "are not sealed" in unsealed.stdout
    resumed = team(ws, "runner", "resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert (ws.root / "second").exists()
    assert team(ws, "runner", "verify", run_id).exit_code == 0
    records = [json.loads(line) for line in stored_lines(team, run_id)]
    assert records[-1]["status"] == "succeeded"
    assert events(records, "run_resumed")[0]["previous_status"] == "interrupted"
