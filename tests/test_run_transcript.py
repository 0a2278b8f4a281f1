"""The transcript (LANGUAGE.md §9) as a user meets it: the records a run leaves, `runbook
verify` on intact and tampered records, big outputs, history, and a crash."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
from conftest import (
    OPERATOR,
    Workspace,
    events,
    finished,
    read_transcript,
    run_dirs,
    signal_mid_step,
    wait_for,
)

from runbook_lang import __version__

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One run of the saga fixture (commands, a failure, a rollback), shared read-only."""
    ws = Workspace(tmp_path_factory.mktemp("recorded"))
    result = ws.run("policy_rollback")
    assert result.exit_code == 1, result.output
    return ws, result.run_dirs()[0]


@pytest.fixture
def copy(recorded, tmp_path):
    """A private copy of the recorded run, to tamper with."""
    _, run_dir = recorded
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def lines_of(run_dir) -> list[bytes]:
    return (run_dir / "transcript.jsonl").read_bytes().split(b"\n")[:-1]


def write_lines(run_dir, lines: list[bytes]) -> None:
    (run_dir / "transcript.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


# ---------------------------------------------------------------------- what a run records


def test_every_line_has_the_common_fields_and_chains_to_the_one_before(recorded):
    _, run_dir = recorded
    prev = "0" * 64
    for number, line in enumerate(lines_of(run_dir)):
        record = json.loads(line)
        assert list(record)[:5] == ["seq", "time", "run_id", "event", "prev"]
        assert record["seq"] == number
        assert TIME.fullmatch(record["time"])
        assert record["run_id"] == run_dir.name
        assert record["prev"] == prev
        prev = sha256(line)


def test_verify_accepts_an_intact_run_and_prints_its_head(recorded):
    ws, run_dir = recorded
    head = sha256(lines_of(run_dir)[-1])
    for ref in (run_dir.name, str(run_dir), str(run_dir / "transcript.jsonl")):
        result = ws.runbook("verify", ref)
        assert result.exit_code == 0, result.output
        assert result.stdout == (f"ok: {len(lines_of(run_dir))} records; chain, head, "
                                 f"snapshot and output logs intact\nhead: {head}\n")


def test_run_started_records_who_ran_what_where_and_how(recorded):
    ws, run_dir = recorded
    started = read_transcript(run_dir)[0]
    assert started["event"] == "run_started"
    assert started["runbook"] == "policy_rollback.runbook"
    assert started["sha256"] == sha256((ws.root / "policy_rollback.runbook").read_bytes())
    assert started["title"] == "Saga"
    assert started["params"] == {}
    assert started["operator"] == {"user": OPERATOR, "host": socket.gethostname()}
    assert started["version"] == __version__
    assert started["argv"] == ["runbook", "run", "policy_rollback.runbook"]
    assert started["mode"] == "run"


@pytest.mark.parametrize(("env", "expected"), [
    ({"LOGNAME": "lee", "USER": "kim"}, "lee"),  # the login name's variables, in order
    ({"LOGNAME": "", "USER": "kim"}, "kim"),
    ({"LOGNAME": "", "USER": "", "LNAME": "", "USERNAME": ""}, None),  # the password file
])
def test_without_runbook_user_the_operator_is_the_login_name(ws, env, expected):
    import pwd

    result = ws.run("params_types", env={"RUNBOOK_USER": "", **env})
    user = result.records()[0]["operator"]["user"]
    assert user == (expected or pwd.getpwuid(os.getuid()).pw_name)


def test_params_are_recorded_with_their_values(ws):
    result = ws.run("params_types", "--param", "replicas=4", "--param", "pause=90s")
    started = result.records()[0]
    assert started["params"]["replicas"] == 4
    assert started["params"]["pause"] == "1m30s"
    assert started["argv"] == ["runbook", "run", "params_types.runbook", "--param",
                               "replicas=4", "--param", "pause=90s"]


def test_commands_are_recorded_with_digests_of_their_logs(recorded):
    _, run_dir = recorded
    records = read_transcript(run_dir)
    first = events(records, "command_finished")[0]
    assert first["command"] == "echo one >> trail.txt"
    assert first["exit_code"] == 0
    # A stream that stayed silent has no log: its record says so, with the empty digest.
    for stream in ("stdout", "stderr"):
        assert first[stream] == {"bytes": 0, "sha256": sha256(b""), "tail": "", "log": None}
    assert first["log"] is None
    assert not list((run_dir / "output").glob(f"{first['seq'] - 1:05d}-*"))
    assert finished(records)["exit_code"] == 1


def test_a_stream_that_prints_gets_a_log_and_a_silent_one_none(ws):
    result = ws.run("output_streams")
    assert result.exit_code == 0, result.output
    run_dir = result.run_dirs()[0]
    loud, quiet = events(result.records(), "command_finished")
    assert loud["stdout"]["log"] == loud["log"]
    for stream, text in (("stdout", b"out\n"), ("stderr", b"err\n")):
        log = run_dir / loud[stream]["log"]
        assert log.read_bytes() == text
        assert loud[stream]["sha256"] == sha256(text) and loud[stream]["bytes"] == len(text)
    assert quiet["stdout"]["log"] is None and quiet["stderr"]["log"] is not None
    assert sorted(p.name for p in (run_dir / "output").iterdir()) == sorted(
        Path(record[stream]["log"]).name for record in (loud, quiet)
        for stream in ("stdout", "stderr") if record[stream]["log"])
    assert ws.runbook("verify", str(run_dir)).exit_code == 0


@pytest.mark.parametrize(("tamper", "message"), [
    (lambda log: log.write_text("not what ran\n"),
     "FAILED: line 4: output log output/00002-loud.stdout.log changed: sha256"),
    (lambda log: log.write_bytes(b""), "FAILED: line 4: output log output/00002-loud.stdout.log "
                                       "changed: sha256"),
    (lambda log: log.unlink(), "FAILED: line 4: output log output/00002-loud.stdout.log is "
                               "missing"),
], ids=["edited", "emptied", "deleted"])
def test_verify_names_a_changed_or_missing_log(ws, tamper, message):
    result = ws.run("output_streams")
    run_dir = result.run_dirs()[0]
    tamper(run_dir / "output" / "00002-loud.stdout.log")
    verified = ws.runbook("verify", str(run_dir))
    assert verified.exit_code == 1
    assert message in verified.stdout


def test_a_30_mb_output_goes_to_its_log_not_the_transcript(ws):
    result = ws.run("transcript_big")
    assert result.exit_code == 0
    run_dir = result.run_dirs()[0]
    assert (run_dir / "transcript.jsonl").stat().st_size < 1_000_000
    command = events(result.records(), "command_finished")[0]
    log = run_dir / command["stdout"]["log"]
    assert command["stdout"]["bytes"] == 30_000_000 == log.stat().st_size
    digest = hashlib.sha256()
    with log.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert command["stdout"]["sha256"] == digest.hexdigest()
    assert command["stdout"]["tail"] == "x" * 2048
    assert ws.runbook("verify", str(run_dir)).exit_code == 0


def test_transcript_dir_puts_the_run_elsewhere(ws):
    result = ws.run("control_when", "--transcript-dir", "records")
    assert result.exit_code == 0, result.output
    (run_dir,) = run_dirs(ws.root / "records")
    assert not (ws.root / ".runbook" / "runs").exists()
    assert f"transcript: records/{run_dir.name}/transcript.jsonl" in result.stdout
    assert ws.runbook("verify", str(run_dir)).exit_code == 0
    history = ws.runbook("history", "--transcript-dir", "records")
    assert run_dir.name in history.stdout


def test_run_ids_sort_by_start_time_and_history_lists_newest_first(ws):
    ids: list[str] = []
    for fixture in ("control_when", "policy_abort", "policy_continue"):
        millisecond = int(time.time() * 1000)
        result = ws.run(fixture)
        (new,) = [d.name for d in result.run_dirs() if d.name not in ids]
        ids.append(new)
        # Run ids count milliseconds: the next run starts in a later one (most often within
        # the same second, which is what the order must survive).
        wait_for(lambda ms=millisecond: int(time.time() * 1000) > ms, what="the next millisecond")
    assert sorted(ids) == ids
    starts = [read_transcript(ws.root / ".runbook" / "runs" / i)[0]["time"] for i in ids]
    assert sorted(starts) == starts
    history = ws.runbook("history")
    assert history.exit_code == 0
    rows = history.stdout.splitlines()
    assert rows[0].split() == ["RUN", "ID", "RUNBOOK", "STATUS", "OPERATOR", "STARTED",
                               "DURATION"]
    assert [row.split()[0] for row in rows[1:]] == ids[::-1]
    assert [row.split()[1:4] for row in rows[1:]] == [
        ["policy_continue.runbook", "succeeded", OPERATOR],
        ["policy_abort.runbook", "failed", OPERATOR],
        ["control_when.runbook", "succeeded", OPERATOR],
    ]


# ---------------------------------------------------------------------- tampering


def tamper_byte(run_dir):
    lines = lines_of(run_dir)
    lines[4] = lines[4].replace(b'"step":"one"', b'"step":"onf"', 1)
    write_lines(run_dir, lines)


def tamper_delete(run_dir):
    lines = lines_of(run_dir)
    del lines[6]
    write_lines(run_dir, lines)


def tamper_swap(run_dir):
    lines = lines_of(run_dir)
    lines[6], lines[7] = lines[7], lines[6]
    write_lines(run_dir, lines)


def tamper_truncate(run_dir):
    write_lines(run_dir, lines_of(run_dir)[:30])


def tamper_tear(run_dir):
    data = (run_dir / "transcript.jsonl").read_bytes()
    cut = sum(len(line) + 1 for line in lines_of(run_dir)[:14])
    (run_dir / "transcript.jsonl").write_bytes(data[:cut + 20])


def tamper_last(run_dir):
    lines = lines_of(run_dir)
    lines[-1] = lines[-1].replace(b'"status":"rolled_back"', b'"status":"succeeded"')
    write_lines(run_dir, lines)


@pytest.mark.parametrize(("tamper", "message"), [
    (tamper_byte, "FAILED: record 4 (line 5) was edited"),
    (tamper_delete, "FAILED: record 6 is missing or out of order: seq 7 found at line 7"),
    (tamper_swap, "FAILED: record 6 is missing or out of order: seq 7 found at line 7"),
    (tamper_truncate, "FAILED: line 31: the transcript is truncated: the head file records "
                      "40 records, only 30 complete lines remain"),
    (tamper_tear, "line 15: the last line is torn (incomplete, 20 bytes)"),
    (tamper_last, "FAILED: record 39 (line 40) was edited: its hash does not match the head "
                  "file"),
], ids=["single-byte", "deleted-line", "swapped-lines", "truncated", "torn", "last-line"])
def test_verify_names_the_first_bad_line(recorded, copy, tamper, message):
    ws, _ = recorded
    assert len(lines_of(copy)) == 40
    tamper(copy)
    result = ws.runbook("verify", str(copy))
    assert result.exit_code == 1
    assert message in result.stdout


def test_show_reports_a_failed_verification(recorded, copy):
    ws, _ = recorded
    tamper_byte(copy)
    result = ws.runbook("show", str(copy))
    assert "Verification     FAILED: line 5: record 4 (line 5) was edited" in result.stdout


# ---------------------------------------------------------------------- a crash


def kill_mid_run(ws):
    """Start the crash fixture, kill -9 runbook while its second step hangs; the run dir."""
    signal_mid_step(ws, "transcript_crash", signal.SIGKILL).communicate(timeout=30)
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    return run_dir


def test_a_killed_run_leaves_a_record_that_verifies(ws):
    run_dir = kill_mid_run(ws)
    result = ws.runbook("verify", str(run_dir))
    problems = [line for line in result.stdout.splitlines()
                if line.startswith(("FAILED", "  also"))]
    # The head lags the records written since the last sync (`hang` started after it): verify
    # names them as unsealed (and a torn last line as torn), nothing else.
    assert result.exit_code == 1, result.stdout
    assert "come after the head" in problems[0] and "are not sealed" in problems[0], problems
    assert all("is torn" in line for line in problems[1:]), problems
    records = read_transcript(run_dir)
    assert records[0]["event"] == "run_started"
    assert events(records, "command_started", step="hang")
    assert not events(records, "run_finished")
    shown = ws.runbook("show", str(run_dir))
    assert "unfinished (no run_finished record)" in shown.stdout
    assert "unfinished" in ws.runbook("history").stdout


def test_after_a_crash_cutting_finished_steps_from_the_record_is_detected(ws):
    run_dir = kill_mid_run(ws)
    # Step `first` finished before `hang` started: its lines were synced, the contract says.
    write_lines(run_dir, lines_of(run_dir)[:1])
    assert ws.runbook("verify", str(run_dir)).exit_code == 1


def test_a_huge_capture_is_recorded_by_size_and_digest(ws):
    result = ws.run("into_large")
    assert result.exit_code == 1
    run_dir = result.run_dirs()[0]
    transcript = run_dir / "transcript.jsonl"
    assert transcript.stat().st_size < 200_000
    values = {r["name"]: r for r in events(result.records(), "variable_set")}
    assert values["big"]["value"] is None
    assert values["big"]["too_large"]["bytes"] == 3_000_002  # the JSON string with quotes
    assert values["size"]["value"] == 3_000_000
    (ws.root / "fixed.txt").touch()
    resumed = ws.runbook("resume", run_dir.name)
    assert resumed.exit_code == 1
    assert "size 3000000" in resumed.stdout
    assert "`big` cannot be restored by a resumed run" in resumed.stdout
    assert "it was set in step `capture`" in resumed.stdout
    assert ws.runbook("verify", str(run_dir)).exit_code == 0
