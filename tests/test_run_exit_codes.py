"""Exit codes (LANGUAGE.md §8): one per way a run ends, the same in the transcript's
run_finished record as in the process's exit status."""

import signal

import pytest
from conftest import finished, read_transcript, run_dirs, run_in_terminal, wait_for


def run_plainly(ws, fixture):
    return ws.run(fixture).exit_code


def run_rejecting(ws, fixture):
    return run_in_terminal(ws, "run", ws.add(fixture), answers="bob\nr\nno\n")[0]


def run_interrupted(ws, fixture):
    proc = ws.start("run", ws.add(fixture))
    try:
        wait_for(lambda: (ws.root / "pids.txt").exists()
                 and len((ws.root / "pids.txt").read_text().split()) == 2,
                 what="the hanging step")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode


ENDINGS = [
    ("succeeded", 0, run_plainly, "control_when"),
    ("failed", 1, run_plainly, "policy_abort"),
    ("rolled_back", 1, run_plainly, "policy_rollback"),
    ("paused", 3, run_plainly, "gate_quorum"),
    ("rejected", 4, run_rejecting, "gate_quorum"),
    ("rollback_failed", 5, run_plainly, "policy_rollback_failed"),
    ("interrupted", 130, run_interrupted, "signal_interrupt"),
]


@pytest.mark.parametrize(("status", "code", "how", "fixture"),
                         [pytest.param(*ending, id=ending[0]) for ending in ENDINGS])
def test_each_way_a_run_ends_has_its_exit_code(ws, status, code, how, fixture):
    assert how(ws, fixture) == code
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    last = finished(read_transcript(run_dir))
    assert (last["status"], last["exit_code"]) == (status, code)


def test_a_static_error_is_exit_2_and_nothing_runs(ws):
    result = ws.run("static_error")
    assert result.exit_code == 2
    assert "error[E200]: undefined name `nobody_defines_this`" in result.stderr
    assert "static_error.runbook:9:15" in result.stderr
    assert "nothing was run" in result.stderr
    assert not (ws.root / "marker").exists()
    assert not (ws.root / ".runbook").exists()


def test_usage_errors_are_exit_2(ws):
    assert ws.runbook("run").exit_code == 2
    assert ws.runbook("run", "missing.runbook").exit_code == 2
    result = ws.run("control_when", "--from", "anounce")
    assert result.exit_code == 2
    assert "--from anounce: no step, check or gate named 'anounce' (did you mean " \
           "'announce'?)" in result.stderr
