"""`runbook resume` (LANGUAGE.md §6.3, §7, §8, §9): a failed, paused, interrupted or crashed
run continues in the same record. Finished steps never run again, the failed or interrupted
one does, captured variables come back, and the whole transcript still verifies. Also
`run --from` and the run lock, which resume shares with `run` (§6.5)."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    LOCK_DIR,
    OPERATOR,
    events,
    finished,
    read_transcript,
    run_dirs,
    signal_mid_step,
    step_order,
    wait_for,
)

from runbook_lang.executors.local import group_alive, process_start
from runbook_lang.store.base import LockKey
from runbook_lang.store.locks import lock_path


def lines(ws, name: str = "runs.txt") -> list[str]:
    """What the steps appended to a file: one line per execution."""
    path = ws.root / name
    return path.read_text().split() if path.exists() else []


def runs_of(ws) -> list[Path]:
    return run_dirs(ws.root / ".runbook" / "runs")


def the_run(ws) -> Path:
    (run_dir,) = runs_of(ws)
    return run_dir


def transcript_bytes(run_dir: Path) -> bytes:
    return (run_dir / "transcript.jsonl").read_bytes()


def assert_verifies(ws, run_dir: Path) -> None:
    result = ws.runbook("verify", str(run_dir))
    assert result.exit_code == 0, result.output


def stop_mid_step(ws, fixture: str, sig: signal.Signals) -> tuple[int, int, str]:
    """Run a fixture until its hanging step wrote pid.txt, then send `sig` to runbook.

    Returns runbook's (pid, exit status, stdout). After kill -9 nothing stopped the step's
    process group, so the test does.
    """
    proc = signal_mid_step(ws, fixture, sig)
    stdout, _ = proc.communicate(timeout=30)
    return proc.pid, proc.returncode, stdout


def tear_last_line(run_dir: Path) -> bytes:
    """Cut the transcript's last line in half, as a crash mid-write leaves it; the half."""
    path = run_dir / "transcript.jsonl"
    body, last = path.read_bytes().removesuffix(b"\n").rsplit(b"\n", 1)
    torn = last[:len(last) // 2]
    path.write_bytes(body + b"\n" + torn)
    return torn


# ---------------------------------------------------------------------- after a failure


def test_after_a_failure_only_the_failed_step_runs_again(ws):
    failed = ws.run("resume_failure")
    assert failed.exit_code == 1, failed.output
    run_dir = the_run(ws)
    assert lines(ws) == ["greet", "count", "flaky"]

    (ws.root / "fixed.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 0, result.output
    assert f"resuming run {run_dir.name} (failed); 2 finished steps kept" in result.stdout
    assert lines(ws) == ["greet", "count", "flaky", "flaky", "last"]
    # The captured text, the number and the duration came back from the transcript.
    assert "✎ greeting=hello answer=42 pause=100ms" in result.stdout
    assert (ws.root / "vars.txt").read_text() == "hello 42\n"

    assert the_run(ws) == run_dir  # the same run, in the same directory
    records = read_transcript(run_dir)
    assert {r["run_id"] for r in records} == {run_dir.name}
    (resumed,) = events(records, "run_resumed")
    assert resumed["previous_status"] == "failed"
    assert resumed["operator"]["user"] == OPERATOR
    assert (resumed["allow_changed"], resumed["torn"]) == (False, None)
    assert records.index(resumed) == records.index(events(records, "run_finished")[0]) + 1
    assert [r["step"] for r in events(records, "step_started")] == \
        ["greet", "count", "flaky", "flaky", "last"]
    assert (finished(records)["status"], finished(records)["exit_code"]) == ("succeeded", 0)
    assert_verifies(ws, run_dir)


def test_resume_with_output_json_prints_one_json_document(ws):
    assert ws.run("resume_failure").exit_code == 1
    run_id = the_run(ws).name
    (ws.root / "fixed.txt").touch()
    result = ws.runbook("resume", run_id, "--output", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["run_id"], summary["status"], summary["exit_code"]) == \
        (run_id, "succeeded", 0)
    assert [(s["name"], s["status"]) for s in summary["steps"]] == [
        ("greet", "succeeded"), ("count", "succeeded"), ("flaky", "succeeded"),
        ("last", "succeeded")]
    assert f"resuming run {run_id}" in result.stderr  # the live output is not on stdout


def test_without_an_argument_resume_continues_the_newest_unfinished_run(ws):
    name = ws.add("resume_failure")
    assert ws.runbook("run", name).exit_code == 1
    assert ws.runbook("run", name).exit_code == 1
    assert ws.run("resume_from").exit_code == 0  # the newest run, but it has ended
    older, newer, succeeded = runs_of(ws)
    (ws.root / "fixed.txt").touch()
    result = ws.runbook("resume")
    assert result.exit_code == 0, result.output
    assert f"resuming run {newer.name} (failed)" in result.stdout
    assert events(read_transcript(newer), "run_resumed")
    assert not events(read_transcript(older), "run_resumed")
    assert not events(read_transcript(succeeded), "run_resumed")


def test_a_run_that_succeeded_is_reported_and_not_run_again(ws):
    (ws.root / "fixed.txt").touch()
    assert ws.run("resume_failure").exit_code == 0
    run_dir = the_run(ws)
    before, files = transcript_bytes(run_dir), ws.files()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 0, result.output
    assert f"run {run_dir.name} already succeeded; nothing to resume" in result.stdout
    assert transcript_bytes(run_dir) == before
    assert ws.files() == files
    assert lines(ws) == ["greet", "count", "flaky", "last"]


def end_rolled_back(ws) -> str:
    assert ws.run("resume_rolled_back").exit_code == 1
    return "rolled_back"


def end_rejected(ws) -> str:
    assert ws.run("resume_gate").exit_code == 3
    run_id = the_run(ws).name
    assert ws.runbook("approve", run_id, "release_gate", "--as", "bob", "--reject").exit_code == 0
    assert ws.runbook("resume", run_id).exit_code == 4
    return "rejected"


@pytest.mark.parametrize("end", [end_rolled_back, end_rejected], ids=["rolled_back", "rejected"])
def test_a_run_that_ended_without_success_is_refused(ws, end):
    status = end(ws)
    run_dir = the_run(ws)
    before, files = transcript_bytes(run_dir), ws.files()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 2
    assert (f"runbook: error: run {run_dir.name} ended as {status}; it cannot be resumed: "
            "start a new run (runbook run …)") in result.stderr
    anything = ws.runbook("resume")
    assert anything.exit_code == 2
    assert "no unfinished run to resume (looked under " in anything.stderr
    assert "see runbook history)" in anything.stderr
    assert transcript_bytes(run_dir) == before
    assert ws.files() == files


def test_rollback_after_resume_undoes_the_steps_finished_before_the_interruption(ws):
    _, code, _ = stop_mid_step(ws, "resume_rollback", signal.SIGINT)
    assert code == 130
    run_dir = the_run(ws)
    (ws.root / "fail.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 1, result.output
    assert lines(ws, "trail.txt") == ["one", "two", "hang", "hang", "undo-hang", "undo-two",
                                      "undo-one"]
    records = read_transcript(run_dir)
    (rollback,) = events(records, "rollback_started")
    assert (rollback["trigger"], rollback["steps"]) == ("hang", ["hang", "two", "one"])
    assert step_order(records, "rollback") == ["hang", "two", "one"]
    assert records.index(rollback) > records.index(events(records, "run_resumed")[0])
    assert finished(records)["status"] == "rolled_back"
    assert_verifies(ws, run_dir)


# ---------------------------------------------------------------------- after a gate


def test_a_run_paused_at_a_gate_continues_after_an_approval_from_another_shell(ws):
    paused = ws.run("resume_gate")
    assert paused.exit_code == 3, paused.output
    run_id = the_run(ws).name
    assert lines(ws) == ["prepare"]  # no finally: a paused run has not ended

    approved = ws.runbook("approve", run_id, "release_gate", "--as", "alice",
                          "--reason", "looks good")
    assert approved.exit_code == 0, approved.output
    assert (f"recorded: alice approves gate release_gate of run {run_id} (1 of 1)\n"
            f"quorum met: runbook resume {run_id}\n") == approved.stdout

    result = ws.runbook("resume", run_id)
    assert result.exit_code == 0, result.output
    assert "✓ approved by alice (approve-command)" in result.stdout
    assert lines(ws) == ["prepare", "release", "finally"]
    records = read_transcript(the_run(ws))
    (approval,) = events(records, "gate_approved")
    assert (approval["gate"], approval["approver"], approval["method"], approval["reason"]) == \
        ("release_gate", "alice", "approve-command", "looks good")
    assert records.index(approval) > records.index(events(records, "run_resumed")[0])
    assert len(events(records, "step_started", phase="finally")) == 1
    assert [r["status"] for r in events(records, "run_finished")] == ["paused", "succeeded"]
    shown = ws.runbook("show", run_id)
    assert "approved by alice via approve-command" in shown.stdout
    assert_verifies(ws, the_run(ws))


def test_a_rejection_by_approve_ends_the_resumed_run_as_rejected(ws):
    assert ws.run("resume_gate").exit_code == 3
    run_id = the_run(ws).name
    rejected = ws.runbook("approve", run_id, "release_gate", "--as", "bob", "--reject",
                          "--reason", "not today")
    assert rejected.exit_code == 0, rejected.output
    assert f"recorded: bob rejects gate release_gate of run {run_id}" in rejected.stdout

    result = ws.runbook("resume", run_id)
    assert result.exit_code == 4, result.output
    assert "✗ rejected by bob (approve command)" in result.stdout
    summary = result.stdout.split("Summary:")[1].splitlines()
    assert any(line.split()[:2] == ["release_gate", "rejected"] for line in summary), summary
    run_dir = the_run(ws)
    assert "✗ release_gate · " in ws.runbook("show", run_dir.name).stdout
    assert lines(ws) == ["prepare", "finally"]
    records = read_transcript(the_run(ws))
    (rejection,) = events(records, "gate_rejected")
    assert (rejection["gate"], rejection["approver"], rejection["method"],
            rejection["reason"]) == ("release_gate", "bob", "approve-command", "not today")
    assert not events(records, "rollback_started")  # the file's policy is abort
    assert (finished(records)["status"], finished(records)["exit_code"]) == ("rejected", 4)


class Later:
    """A clock `hours` ahead of the system's: a gate's timeout passes without waiting."""

    def __init__(self, hours: float) -> None:
        self.offset = hours * 3600

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def decide_and_resume(ws, run_id: str, clock: Later) -> tuple[str | Exception, int]:
    """alice approves, then the run resumes, both at `clock`'s time (through the front door)."""
    import runbook_lang
    from runbook_lang.engine.approve import ApproveRequest
    from runbook_lang.engine.resumption import ResumeRequest
    from runbook_lang.errors import Refused
    from runbook_lang.store import store_for

    store = store_for(None, ws.root / ".runbook" / "runs")
    try:
        said: str | Exception = runbook_lang.approve(
            ApproveRequest(run_id, "release_gate", "alice"), store, clock)
    except Refused as refusal:
        said = refusal
    cwd = os.getcwd()
    os.chdir(ws.root)
    try:
        result = runbook_lang.resume(ResumeRequest(run_id), store, clock=clock)
    finally:
        os.chdir(cwd)
    return said, result.exit_code


def test_a_gate_past_its_timeout_ends_the_run_as_rejected_and_rolls_back(ws):
    assert ws.run("gate_timeout_hour").exit_code == 3
    run_id = the_run(ws).name
    said, code = decide_and_resume(ws, run_id, Later(hours=2))
    assert isinstance(said, Exception)
    assert str(said).startswith(f"gate release_gate of run {run_id} timed out")
    assert code == 4
    assert lines(ws, "trail.txt") == ["prepare", "undo-prepare", "finally"]
    records = read_transcript(the_run(ws))
    (timed_out,) = events(records, "gate_timed_out")
    assert (timed_out["gate"], timed_out["reason"]) == ("release_gate", "no quorum within 1h")
    assert not events(records, "gate_approved")  # too late to count
    (rollback,) = events(records, "rollback_started")
    assert (rollback["trigger"], rollback["steps"]) == ("release_gate", ["prepare"])
    assert (finished(records)["status"], finished(records)["exit_code"]) == ("rejected", 4)
    assert_verifies(ws, the_run(ws))


def test_a_decision_within_the_timeout_counts(ws):
    assert ws.run("gate_timeout_hour").exit_code == 3
    run_id = the_run(ws).name
    said, code = decide_and_resume(ws, run_id, Later(hours=0.5))
    assert f"recorded: alice approves gate release_gate of run {run_id}" in str(said)
    assert code == 0
    assert lines(ws, "trail.txt") == ["prepare", "release", "finally"]
    records = read_transcript(the_run(ws))
    assert not events(records, "gate_timed_out")
    assert [r["approver"] for r in events(records, "gate_approved")] == ["alice"]
    assert_verifies(ws, the_run(ws))


# ---------------------------------------------------------------------- after a signal or a crash


def test_after_ctrl_c_only_the_interrupted_step_runs_again(ws):
    _, code, stdout = stop_mid_step(ws, "resume_hang", signal.SIGINT)
    assert code == 130, stdout
    run_dir = the_run(ws)
    assert finished(read_transcript(run_dir))["status"] == "interrupted"
    (ws.root / "done.txt").touch()
    # A transcript's path works as well as a run id.
    result = ws.runbook("resume", str(run_dir / "transcript.jsonl"))
    assert result.exit_code == 0, result.output
    assert lines(ws) == ["first", "hang", "hang", "after"]
    records = read_transcript(run_dir)
    assert events(records, "run_resumed")[0]["previous_status"] == "interrupted"
    assert finished(records)["status"] == "succeeded"
    assert_verifies(ws, run_dir)


def test_after_kill_9_resume_takes_the_dead_run_s_lock_over(ws):
    pid, code, _ = stop_mid_step(ws, "resume_hang", signal.SIGKILL)
    assert code == -signal.SIGKILL
    run_dir = the_run(ws)
    assert not events(read_transcript(run_dir), "run_finished")
    (ws.root / "done.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 0, result.output
    assert lines(ws) == ["first", "hang", "hang", "after"]
    records = read_transcript(run_dir)
    (resumed,) = events(records, "run_resumed")
    takeover = resumed["lock_takeover"]
    assert (takeover["run_id"], takeover["pid"], takeover["host"]) == \
        (run_dir.name, pid, socket.gethostname())
    assert finished(records)["status"] == "succeeded"
    assert_verifies(ws, run_dir)


def test_a_torn_last_line_is_reported_then_cut_off_by_resume(ws):
    stop_mid_step(ws, "resume_hang", signal.SIGKILL)
    run_dir = the_run(ws)
    complete = len(transcript_bytes(run_dir).splitlines()) - 1
    torn = tear_last_line(run_dir)

    checked = ws.runbook("verify", str(run_dir))
    assert checked.exit_code == 1
    assert f"line {complete + 1}: the last line is torn (incomplete, {len(torn)} bytes)" in \
        checked.stdout

    (ws.root / "done.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 0, result.output
    assert lines(ws) == ["first", "hang", "hang", "after"]
    records = read_transcript(run_dir)
    (resumed,) = events(records, "run_resumed")
    assert resumed["seq"] == complete  # in the place of the torn record
    assert resumed["torn"] == {"bytes": len(torn), "sha256": hashlib.sha256(torn).hexdigest()}
    assert_verifies(ws, run_dir)


# ---------------------------------------------------------------------- refusals


def test_a_changed_runbook_is_refused_naming_the_steps_unless_allowed(ws):
    assert ws.run("resume_failure").exit_code == 1
    run_dir = the_run(ws)
    path = ws.root / "resume_failure.runbook"
    text = path.read_text()
    text = text.replace(text[text.index("step count"):text.index("step flaky")], "")
    text = text.replace("  wait pause_for\n", "").replace(" answer={{answer}} pause={{pause_for}}",
                                                          "")
    text = text.replace(" {{answer}} >", " >")
    path.write_text(text + '\nstep extra "Added later" {\n  run "echo extra >> runs.txt"\n}\n')
    (ws.root / "fixed.txt").touch()
    before = transcript_bytes(run_dir)

    refused = ws.runbook("resume", run_dir.name)
    assert refused.exit_code == 2
    assert (f"changed since run {run_dir.name} started:\n"
            "  added: extra\n  removed: count\n  edited: last\n"
            "resume with --allow-changed to continue anyway (recorded)") in refused.stderr
    assert transcript_bytes(run_dir) == before
    assert lines(ws) == ["greet", "count", "flaky"]

    allowed = ws.runbook("resume", run_dir.name, "--allow-changed")
    assert allowed.exit_code == 0, allowed.output
    assert lines(ws) == ["greet", "count", "flaky", "flaky", "last", "extra"]
    records = read_transcript(run_dir)
    assert events(records, "run_resumed")[0]["allow_changed"] is True
    assert_verifies(ws, run_dir)


def test_a_transcript_that_does_not_verify_is_not_continued(ws):
    assert ws.run("resume_failure").exit_code == 1
    run_dir = the_run(ws)
    path = run_dir / "transcript.jsonl"
    data = path.read_bytes()
    at = data.index(b'"Set a number and a pause"') + 1
    path.write_bytes(data[:at] + b"s" + data[at + 1:])  # one byte, in the middle
    (ws.root / "fixed.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 2
    assert f"runbook: error: the transcript of {run_dir.name} does not verify" in result.stderr
    assert "was edited" in result.stderr
    assert "it will not be continued" in result.stderr
    assert lines(ws) == ["greet", "count", "flaky"]
    assert not (ws.root / "vars.txt").exists()


# ---------------------------------------------------------------------- run --from


def test_from_records_the_earlier_steps_as_skipped(ws):
    result = ws.run("resume_from", "--from", "two")
    assert result.exit_code == 0, result.output
    assert lines(ws) == ["two", "three"]
    records = result.records()
    assert [(r["step"], r["status"], r["reason"]) for r in events(records, "step_finished")] == [
        ("one", "skipped", "before --from two: skipped by the operator"),
        ("two", "succeeded", ""), ("three", "succeeded", "")]


def test_from_past_the_only_setter_of_a_variable_is_refused_before_anything_runs(ws):
    result = ws.run("resume_from_vars", "--from", "two")
    assert result.exit_code == 2
    assert ("runbook: error: step `three` reads `token`, which only step `one` sets, and "
            "--from two skips it") in result.stderr
    assert ws.files() == ["resume_from_vars.runbook"]


def test_from_an_unknown_step_names_it_and_the_closest_one(ws):
    result = ws.run("resume_from", "--from", "thre")
    assert result.exit_code == 2
    assert ("runbook: error: --from thre: no step, check or gate named 'thre' "
            "(did you mean 'three'?)") in result.stderr
    assert ws.files() == ["resume_from.runbook"]


# ---------------------------------------------------------------------- the run lock


def test_of_two_concurrent_runs_exactly_one_proceeds(ws):
    name = ws.add("lock_hold")
    procs = [ws.start("run", name), ws.start("run", name)]
    try:
        refused = wait_for(lambda: next((p for p in procs if p.poll() is not None), None),
                           what="one of the runs to be refused")
        holder = procs[1] if refused is procs[0] else procs[0]
        _, stderr = refused.communicate(timeout=30)
        assert refused.returncode == 2, stderr
        wait_for((ws.root / "started-staging.txt").exists, what="the other run to hold")
        held = the_run(ws)
        assert (f"runbook: error: refused: another run holds the lock: run {held.name} by "
                f"{OPERATOR}, pid {holder.pid} on {socket.gethostname()}, since ") in stderr

        plan = ws.runbook("run", name, "--dry-run")
        assert plan.exit_code == 0, plan.output
        assert holder.poll() is None
    finally:
        (ws.root / "release-staging.txt").touch()
        for proc in procs:
            proc.communicate(timeout=30)
    assert holder.returncode == 0
    assert len(runs_of(ws)) == 1  # the refused run recorded nothing


def test_after_the_holder_is_killed_the_next_run_takes_its_lock_over(ws):
    pid, _, _ = stop_mid_step(ws, "resume_hang", signal.SIGKILL)
    (dead,) = runs_of(ws)
    (ws.root / "done.txt").touch()
    result = ws.runbook("run", "resume_hang.runbook")
    assert result.exit_code == 0, result.output
    _, new = runs_of(ws)
    takeover = read_transcript(new)[0]["lock_takeover"]
    assert (takeover["run_id"], takeover["pid"], takeover["user"]) == (dead.name, pid, OPERATOR)
    assert takeover["found"] == "stale lock of a run that is gone"


# ---------------------------------------------------------------------- during a rollback


def test_a_run_interrupted_during_its_rollback_resumes_the_rollback(ws):
    _, code, _ = stop_mid_step(ws, "resume_mid_rollback", signal.SIGINT)
    assert code == 130
    run_dir = the_run(ws)
    assert lines(ws, "trail.txt") == ["one", "two", "three", "boom", "undo-three",
                                      "undo-two-start"]
    (ws.root / "release.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 1, result.output
    # The undo of `two` had not finished: it runs again; `three`'s undo had: never again.
    # Nothing goes forward (`later` never runs) and `finally` runs once, at the end.
    assert lines(ws, "trail.txt") == ["one", "two", "three", "boom", "undo-three",
                                      "undo-two-start", "undo-two-start", "undo-two",
                                      "undo-one", "finally-rolled_back"]
    records = read_transcript(run_dir)
    first, resumed = events(records, "rollback_started")
    assert (first["trigger"], first["steps"]) == ("boom", ["three", "two", "one"])
    assert (resumed["steps"], resumed["resumed"]) == (["two", "one"], True)
    assert finished(records)["status"] == "rolled_back"
    assert finished(records)["failed_step"] == "boom"
    summary = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()
               if line.startswith("  ") and len(line.split()) == 3}
    assert summary == {"one": "rolled_back", "two": "rolled_back", "three": "rolled_back",
                       "boom": "failed"}
    assert_verifies(ws, run_dir)


def test_a_run_killed_during_its_rollback_resumes_the_rollback(ws):
    _, code, _ = stop_mid_step(ws, "resume_mid_rollback", signal.SIGKILL)
    assert code == -signal.SIGKILL
    run_dir = the_run(ws)
    (ws.root / "release.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 1, result.output
    assert lines(ws, "trail.txt")[-4:] == ["undo-two-start", "undo-two", "undo-one",
                                           "finally-rolled_back"]
    assert "later" not in lines(ws, "trail.txt")
    assert lines(ws, "trail.txt").count("undo-three") == 1
    assert finished(read_transcript(run_dir))["status"] == "rolled_back"
    assert_verifies(ws, run_dir)


def test_a_finished_rollback_is_not_run_again_when_finally_was_interrupted(ws):
    _, code, _ = stop_mid_step(ws, "resume_mid_rollback", signal.SIGINT)
    (ws.root / "release.txt").touch()
    run_dir = the_run(ws)
    assert ws.runbook("resume", run_dir.name).exit_code == 1
    # Ended as rolled back: a further resume is refused, nothing runs again.
    again = ws.runbook("resume", run_dir.name)
    assert again.exit_code == 2
    assert "ended as rolled_back" in again.stderr


# ---------------------------------------------------------------------- for-step addresses


def test_from_an_instance_starts_at_that_instance(ws):
    result = ws.run("for_addresses", "--from", "deploy[b]")
    assert result.exit_code == 0, result.output
    assert lines(ws, "trail.txt") == ["deploy-b", "deploy-c", "after"]
    statuses = {r["step"]: r["status"] for r in events(result.records(), "step_finished")}
    assert statuses == {"prep": "skipped", "deploy[a]": "skipped", "deploy[b]": "succeeded",
                        "deploy[c]": "succeeded", "after": "succeeded"}


def test_fail_at_an_instance_fails_that_instance_only(ws):
    result = ws.run("for_addresses", "--fail-at", "deploy[b]")
    assert result.exit_code == 1, result.output
    assert lines(ws, "trail.txt") == ["prep", "deploy-a", "deploy-b", "undo-b", "undo-a",
                                      "undo-prep"]
    assert finished(result.records())["failed_step"] == "deploy[b]"


@pytest.mark.parametrize("flag", ["--from", "--fail-at"])
def test_an_unknown_instance_is_refused_with_the_known_ones(ws, flag):
    result = ws.run("for_addresses", flag, "deploy[x]")
    assert result.exit_code == 2
    assert (f"{flag} deploy[x]: deploy has no such instance (instances: deploy[a], deploy[b], "
            "deploy[c])") in result.stderr
    assert not (ws.root / "trail.txt").exists()
    assert not result.run_dirs()


def test_a_mistyped_fail_at_never_turns_a_drill_into_a_deploy(ws):
    result = ws.run("for_addresses_late", "--fail-at", "deploy[x]")
    assert result.exit_code == 1, result.output
    # The list was only known at run time: `deploy` fails before any instance runs.
    assert lines(ws, "trail.txt") == ["undo-list"]
    reasons = {r["step"]: r["reason"] for r in events(result.records(), "step_finished")}
    assert reasons["deploy"] == ("--fail-at deploy[x]: deploy has no such instance (instances: "
                                 "deploy[a], deploy[b]); nothing was run")


# ---------------------------------------------------------------------- orphans


def test_after_kill_9_a_surviving_command_blocks_run_and_resume_until_it_ends(ws):
    """kill -9 of runbook leaves the running command's process group alive: no run or
    resume of the same lock may start while it lives, and the refusal names it."""
    name = ws.add("resume_hang")
    proc = ws.start("run", name)
    pid_file = ws.root / "pid.txt"
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 what="the hanging step")
        group = int(pid_file.read_text())
        # The command starts before runbook notes its group in the lock: a kill -9 in
        # between leaves nothing to refuse on, so wait for the note.
        wait_for(lambda: any(f'"pgid": {group},' in lock.read_text(errors="replace")
                             for lock in LOCK_DIR.iterdir() if lock.is_file()),
                 what="the lock to note the command's process group")
        proc.kill()
        proc.communicate(timeout=30)
        run_dir = the_run(ws)
        for args in (("resume", run_dir.name), ("run", name)):
            refused = ws.runbook(*args)
            assert refused.exit_code == 2, refused.output
            assert f"process group {group} is still running" in refused.stderr
            assert f"kill -TERM -{group}" in refused.stderr
        assert lines(ws) == ["first", "hang"]
    finally:
        proc.kill()
        proc.communicate(timeout=30)
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, NameError):
            pass
    wait_for(lambda: not group_alive(group), what="the group to end")
    (ws.root / "done.txt").touch()
    result = ws.runbook("resume", run_dir.name)
    assert result.exit_code == 0, result.output
    assert lines(ws) == ["first", "hang", "hang", "after"]


def test_a_noted_group_whose_pid_now_names_a_later_process_does_not_block(ws):
    """A dead run's note names a command's group by pid and the moment before its spawn: a
    live process that got the pid later (here, one started 60 s after the noted moment) is
    someone else's, and the next run takes the lock over; one started soon after blocks."""
    name = ws.add("resume_hang")
    (ws.root / "done.txt").touch()
    assert ws.runbook("run", name).exit_code == 0
    book = ws.root / name
    lock = LOCK_DIR / lock_path(LockKey(os.path.realpath(book), None, book.name)).name
    assert lock.exists()
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        boot, ticks = process_start(other.pid).rsplit(":", 1)
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        # Noted 60 s before it started: another process. Noted at its start, or 5 s before
        # (a spawn held up on a loaded machine): the command itself.
        for noted, blocks in ((int(ticks) - 60 * ticks_per_second, False), (int(ticks), True),
                              (int(ticks) - 5 * ticks_per_second, True)):
            note = {"run_id": "20261203T000000000Z-dead00", "pid": 999999, "processes": [
                {"pgid": other.pid, "start": f"{boot}:{noted}", "host": "local"}]}
            lock.write_text(json.dumps(note))
            result = ws.runbook("run", name)
            if blocks:
                assert result.exit_code == 2, result.output
                assert f"process group {other.pid} is still running" in result.stderr
            else:
                assert result.exit_code == 0, result.output
    finally:
        other.kill()
        other.wait()
