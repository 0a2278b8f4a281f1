"""The report's golden scenarios (tests/fixtures/report/): each runbook, played the way its
scenario says — a plain success, a failure with rollback, a pause with an out-of-band
approval and a resume, an interruption and a resume, a `for` step, a tolerated failure —
with the real `runbook` command in a temporary directory."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

from conftest import Workspace, normalise_measured, read_pids, run_dirs, wait_for

REPORT_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "report"
SCENARIOS = ["plain_success", "rollback", "pause_resume", "interrupt_resume", "for_step",
             "tolerated"]
# The exit code each scenario's last command ends with (LANGUAGE.md §8).
EXIT = {"plain_success": 0, "rollback": 1, "pause_resume": 0, "interrupt_resume": 0,
        "for_step": 0, "tolerated": 0}
# What a scenario's first `runbook run` adds to the command line.
RUN_ARGS = {"plain_success": ["--approve", "approve_release=alice"]}


def add(ws: Workspace, name: str) -> str:
    """Copy a golden runbook into the workspace; its file name."""
    shutil.copy(REPORT_FIXTURES / f"{name}.runbook", ws.root / f"{name}.runbook")
    return f"{name}.runbook"


def play(ws: Workspace, name: str) -> Path:
    """Play a scenario to its end; the run directory."""
    file = add(ws, name)
    if name == "pause_resume":
        paused = ws.runbook("run", file)
        assert paused.exit_code == 3, paused.output
        run_id = the_run(ws).name
        approved = ws.runbook("approve", run_id, "approve_prod", "--as", "alice",
                              "--reason", "change 42 reviewed")
        assert approved.exit_code == 0, approved.output
        last = ws.runbook("resume", run_id)
    elif name == "interrupt_resume":
        interrupt(ws, file)
        (ws.root / "done.txt").touch()
        last = ws.runbook("resume", the_run(ws).name)
    else:
        last = ws.runbook("run", file, *RUN_ARGS.get(name, []))
    assert last.exit_code == EXIT[name], last.output
    return the_run(ws)


def interrupt(ws: Workspace, file: str) -> None:
    """Start the run, wait for its hanging step, then Ctrl-C it (SIGINT): exit 130."""
    proc = ws.start("run", file)
    pid_file = ws.root / "pid.txt"
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 what="the hanging step")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert proc.returncode == 130
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
        # Nothing may outlive the test: the interrupted step's process group included.
        for pgid in read_pids(pid_file) if pid_file.exists() else []:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def the_run(ws: Workspace) -> Path:
    """The only run recorded in the workspace."""
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    return run_dir


def shown(text: str, ws: Workspace) -> str:
    """What a user reads, with what changes from run to run normalised."""
    text = normalise_measured(text, ws.root)
    # The size of an output tail that holds a pid or a path could differ; none here does.
    return re.sub(r"\b\d+\.\d+s\b", "<n>s", text)
