"""`runbook approve RUN_ID GATE --as NAME` (LANGUAGE.md §6.3, §8): a decision for a run that
waits at a gate, recorded with the run and counted when it resumes. Only names the gate
accepts count, each once, never the operator who started the run under `self_approval
false`; every refusal says why, exits non-zero and writes nothing."""

import pytest
from conftest import events, finished, read_transcript, run_dirs


def lines(ws) -> list[str]:
    path = ws.root / "runs.txt"
    return path.read_text().split() if path.exists() else []


def paused_run(ws, fixture: str, *args: str) -> str:
    """Run a fixture until it pauses at a gate; its run id."""
    result = ws.run(fixture, *args)
    assert result.exit_code == 3, result.output
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    return run_dir.name


def state(ws) -> tuple[list[str], dict[str, bytes]]:
    """Every path in the workspace and the bytes of every file under .runbook."""
    data = {str(p.relative_to(ws.root)): p.read_bytes()
            for p in (ws.root / ".runbook").rglob("*") if p.is_file()}
    return ws.files(), data


def refused(ws, run_id: str, gate: str, who: str, message: str) -> None:
    """`runbook approve` refuses with `message` on stderr and changes nothing."""
    before = state(ws)
    result = ws.runbook("approve", run_id, gate, "--as", who)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert f"runbook: error: {message}\n" in result.stderr
    assert state(ws) == before


def approvals(ws) -> list[tuple[str, str]]:
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    return [(r["approver"], r["method"]) for r in events(read_transcript(run_dir),
                                                           "gate_approved")]


def test_a_quorum_of_two_needs_two_approvals(ws):
    run_id = paused_run(ws, "approve_quorum", "--as", "alice")
    first = ws.runbook("approve", run_id, "release_gate", "--as", "bob")
    assert first.exit_code == 0, first.output
    assert first.stdout == (f"recorded: bob approves gate release_gate of run {run_id} "
                            "(1 of 2)\n1 more approval needed before resuming\n")

    again = ws.runbook("resume", run_id)
    assert again.exit_code == 3, again.output
    assert "⏸ waiting at gate release_gate: 1 more approval needed" in again.stdout
    assert lines(ws) == ["prepare"]

    second = ws.runbook("approve", run_id, "release_gate", "--as", "carol")
    assert second.exit_code == 0, second.output
    assert second.stdout == (f"recorded: carol approves gate release_gate of run {run_id} "
                             f"(2 of 2)\nquorum met: runbook resume {run_id}\n")
    done = ws.runbook("resume", run_id)
    assert done.exit_code == 0, done.output
    assert lines(ws) == ["prepare", "release"]
    assert approvals(ws) == [("bob", "approve-command"), ("carol", "approve-command")]


def test_a_name_outside_approvers_is_refused(ws):
    run_id = paused_run(ws, "approve_quorum", "--as", "alice")
    refused(ws, run_id, "release_gate", "mallory",
            "'mallory' may not approve gate release_gate (approvers: alice, bob, carol)")


def test_the_operator_is_refused_under_self_approval_false(ws):
    run_id = paused_run(ws, "approve_quorum", "--as", "alice")
    refused(ws, run_id, "release_gate", "alice",
            f"'alice' started run {run_id} and gate release_gate has self_approval false")


def test_the_operator_who_started_the_run_is_refused_after_someone_else_resumed_it(ws):
    run_id = paused_run(ws, "approve_quorum", "--as", "alice",
                        "--approve", "release_gate=bob")
    assert ws.runbook("resume", run_id, "--as", "carol").exit_code == 3
    refused(ws, run_id, "release_gate", "alice",
            f"'alice' started run {run_id} and gate release_gate has self_approval false")


def test_a_second_vote_by_the_same_name_is_refused(ws):
    run_id = paused_run(ws, "approve_quorum", "--as", "alice")
    assert ws.runbook("approve", run_id, "release_gate", "--as", "bob").exit_code == 0
    refused(ws, run_id, "release_gate", "bob",
            f"'bob' has already decided on gate release_gate of run {run_id}")


def test_a_second_vote_after_an_approve_flag_on_the_run_is_refused(ws):
    run_id = paused_run(ws, "approve_quorum", "--as", "alice",
                        "--approve", "release_gate=bob")
    assert approvals(ws) == [("bob", "flag")]
    refused(ws, run_id, "release_gate", "bob",
            f"'bob' has already decided on gate release_gate of run {run_id}")


def test_an_unknown_run_is_refused(ws):
    paused_run(ws, "approve_quorum", "--as", "alice")
    refused(ws, "20260101T000000000Z-abcdef", "release_gate", "bob",
            "no run '20260101T000000000Z-abcdef' here (see runbook history)")


def test_an_unknown_gate_is_refused(ws):
    run_id = paused_run(ws, "approve_quorum", "--as", "alice")
    refused(ws, run_id, "relase_gate", "bob",
            f"run {run_id} has no gate 'relase_gate'; it waits at gate 'release_gate'")


@pytest.mark.parametrize(("args", "gate", "waits_at"), [
    ((), "second_gate", "first_gate"),  # a gate the run has not reached
    (("--approve", "first_gate=alice"), "first_gate", "second_gate"),  # one it has passed
], ids=["later gate", "earlier gate"])
def test_a_gate_the_run_does_not_wait_at_is_refused(ws, args, gate, waits_at):
    run_id = paused_run(ws, "approve_two_gates", *args)
    refused(ws, run_id, gate, "bob",
            f"run {run_id} is not waiting at gate {gate!r}; it waits at gate {waits_at!r}")


def test_a_finished_run_is_refused(ws):
    run_id = paused_run(ws, "approve_two_gates")
    assert ws.runbook("approve", run_id, "first_gate", "--as", "alice").exit_code == 0
    assert ws.runbook("resume", run_id, "--approve", "second_gate=bob").exit_code == 0
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    assert finished(read_transcript(run_dir))["status"] == "succeeded"
    refused(ws, run_id, "second_gate", "alice",
            f"run {run_id} is not waiting at a gate (it is succeeded)")
