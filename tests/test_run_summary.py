"""The summary a run prints when it ends: aligned for every status, `for` instances as
`[i/n]` of their own, captured values by name, and after Ctrl-C or a pause the exact
`runbook resume …` command that continues the run."""

from __future__ import annotations

import io
import os
import re
import signal

from conftest import normalise_measured, read_pids, run_dirs, wait_for
from hypothesis import given
from hypothesis import strategies as st
from reportruns import add, the_run

from runbook_lang.reporting.display import Display

STATUSES = ["succeeded", "failed", "tolerated", "skipped", "rolled_back", "rollback_failed",
            "rejected", "paused", "interrupted", "pending", "running"]


@given(st.lists(st.tuples(st.from_regex(r"[a-z_]{1,20}(\[[a-z0-9]{1,8}\] \[\d/\d\])?",
                                        fullmatch=True),
                          st.sampled_from(STATUSES), st.integers(0, 10**7)),
                min_size=1, max_size=12))
def test_the_summary_table_stays_aligned_whatever_the_statuses(rows):
    out = io.StringIO()
    Display(out).summary(rows, "rollback_failed", 5, 1234)
    lines = out.getvalue().splitlines()
    table = lines[lines.index("Summary:") + 1:lines.index("Summary:") + 1 + len(rows)]
    # The status column starts at one place, and so does the duration column.
    assert len({line.index(status, len(name) + 2) for line, (name, status, _) in
                zip(table, rows, strict=True)}) == 1
    durations = {len(line) - len(line.rsplit(" ", 1)[1]) for line in table}
    assert len(durations) == 1


def test_a_for_steps_instances_count_themselves_and_captures_are_named(ws, snapshot):
    result = ws.runbook("run", add(ws, "for_step"))
    assert result.exit_code == 0, result.output
    for i, host in enumerate(("web1", "web2", "web3"), 1):
        assert f"▶ [1/2] restart[{host}] [{i}/3]: Restart {host}" in result.stdout
        assert f"    ↳ restarted = restarting {host}" in result.stdout
    summary = result.stdout[result.stdout.index("Summary:"):]
    assert normalise_measured(summary, ws.root) == snapshot


def test_rollback_failed_keeps_the_table_aligned(ws, snapshot):
    result = ws.run("policy_rollback_failed")
    assert result.exit_code == 5, result.output
    summary = result.stdout[result.stdout.index("Summary:"):]
    assert "rollback_failed" in result.stdout
    assert normalise_measured(summary, ws.root) == snapshot


def test_after_ctrl_c_the_summary_gives_the_resume_command_and_it_works(ws):
    file = add(ws, "interrupt_resume")
    proc = ws.start("run", file)
    try:
        interrupt_output = _interrupt(ws, proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    run_id = the_run(ws).name
    assert f"to continue: runbook resume {run_id}\n" in interrupt_output
    (ws.root / "done.txt").touch()
    command = re.search(r"to continue: (runbook resume \S+)", interrupt_output).group(1)
    resumed = ws.runbook(*command.split()[1:])
    assert resumed.exit_code == 0, resumed.output
    assert "to continue" not in resumed.stdout


def test_after_a_pause_the_summary_gives_the_resume_command(ws):
    paused = ws.runbook("run", add(ws, "pause_resume"))
    assert paused.exit_code == 3
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    assert paused.stdout.rstrip().endswith(f"to continue: runbook resume {run_dir.name}")


def test_with_a_transcript_dir_the_resume_command_names_the_transcript(ws):
    paused = ws.runbook("run", add(ws, "pause_resume"), "--transcript-dir", "elsewhere")
    assert paused.exit_code == 3
    (run_dir,) = run_dirs(ws.root / "elsewhere")
    assert (f"to continue: runbook resume elsewhere/{run_dir.name}/transcript.jsonl"
            in paused.stdout)


def _interrupt(ws, proc) -> str:
    """Ctrl-C the run once its hanging step runs; what it printed."""
    pid_file = ws.root / "pid.txt"
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 what="the hanging step")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 130
        return out
    finally:
        for pgid in read_pids(pid_file) if pid_file.exists() else []:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass



def test_a_resumed_for_step_keeps_each_instance_s_place(ws):
    (ws.root / "loop.runbook").write_text(
        'param hosts: list = ["web1", "web2", "web3"]\n'
        'step deploy "Deploy {{h}}" for h in hosts {\n'
        '  run "test {{h}} != web2 || test -f ok"\n'
        '}\n')
    assert ws.runbook("run", "loop.runbook").exit_code == 1
    (ws.root / "ok").touch()
    resumed = ws.runbook("resume")
    assert resumed.exit_code == 0, resumed.output
    summary = resumed.stdout.split("Summary:")[1]
    assert [line.split()[:2] for line in summary.splitlines()[1:4]] == [
        ["deploy[web1]", "[1/3]"], ["deploy[web2]", "[2/3]"], ["deploy[web3]", "[3/3]"]]


def test_ctrl_c_inside_an_undo_block_is_shown_as_such(ws):
    (ws.root / "rb.runbook").write_text(
        'on_failure rollback\n'
        'step one "One" {\n  run "echo one"\n'
        '  rollback { run "touch undoing; sleep 30" }\n}\n'
        'step two "Two" {\n  run "exit 4"\n}\n')
    proc = ws.start("run", "rb.runbook")
    wait_for(lambda: (ws.root / "undoing").exists(), what="the undo block to start")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    summary = out.split("Summary:")[1].splitlines()
    assert summary[1].split()[:2] == ["one", "undo_interrupted"]
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    shown = ws.runbook("show", run_dir.name)
    assert "interrupted during the rollback after two (exit 130): resume finishes the " \
           "rollback" in shown.stdout
