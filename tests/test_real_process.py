"""One smoke test per command in a real `runbook` process, the installed console script.

Every other test calls `cli.main` in the test process (see harness.py). Each test here runs
one command both ways, in two workspaces prepared alike, and asserts what the user sees of
the real process, and that the in-process call showed exactly the same: exit code, stdout,
stderr, the files written and the transcript (run ids, times, durations and the two
temporary folders aside). A difference means the harness no longer stands in for a process.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    Result,
    Workspace,
    clean_env,
    normalise_measured,
    read_transcript,
    run_dirs,
)

from runbook_lang import __version__

# Fields of a record that differ between two runs of the same thing.
VOLATILE = {"time", "prev", "run_id", "duration_ms"}

Prepare = Callable[[Workspace], list[str]]


def in_both(tmp_path: Path, prepare: Prepare, env: dict | None = None) -> Result:
    """Prepare two workspaces alike, run `runbook ARGS…` (ARGS from `prepare`) in a real
    process in one and in-process in the other, assert the two look the same; the real
    process's result."""
    seen = {}
    for how in ("process", "in-process"):
        ws = Workspace(tmp_path / how)
        ws.root.mkdir()
        args = prepare(ws)
        call = ws.process if how == "process" else ws.runbook
        seen[how] = ws, call(*args, env=env)
    (real_ws, real), (twin_ws, twin) = seen["process"], seen["in-process"]
    assert shown(real, real_ws) == shown(twin, twin_ws)
    assert files(real_ws) == files(twin_ws)
    assert records(real_ws) == records(twin_ws)
    return real


def shown(result: Result, ws: Workspace) -> tuple[int, str, str]:
    return (result.exit_code, measured(result.stdout, ws), measured(result.stderr, ws))


def measured(text: str, ws: Workspace) -> str:
    """`normalise_measured`, and the one-decimal durations of `history` (`0.1s`)."""
    return re.sub(r"\b\d+\.\ds\b", "<n>s", normalise_measured(text, ws.root))


def files(ws: Workspace) -> list[str]:
    """The workspace's paths, run ids and output log numbers aside."""
    return sorted(re.sub(r"-[0-9a-f]{12}\.lock$", "-<path-hash>.lock", normalise_measured(name))
                  for name in ws.files())


def records(ws: Workspace) -> list[list[dict]]:
    """Every run's records without what differs from run to run."""
    runs = []
    for run_dir in run_dirs(ws.root / ".runbook" / "runs"):
        stable = [{k: v for k, v in record.items() if k not in VOLATILE}
                  for record in read_transcript(run_dir)]
        runs.append(json.loads(normalise_measured(json.dumps(stable), ws.root)))
    return runs


def paused_at_a_gate(ws: Workspace) -> str:
    """A run (in-process) that waits at a gate; its run id."""
    assert ws.run("resume_gate").exit_code == 3
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    return run_dir.name


def failed_then_fixed(ws: Workspace) -> str:
    """A run (in-process) that failed at a step which would now pass; its run id."""
    assert ws.run("resume_failure").exit_code == 1
    (ws.root / "fixed.txt").touch()
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    return run_dir.name


def test_real_process_version(tmp_path):
    result = in_both(tmp_path, lambda ws: ["--version"])
    assert (result.exit_code, result.stdout, result.stderr) == \
        (0, f"runbook {__version__}\n", "")


def test_real_process_without_a_command(tmp_path):
    result = in_both(tmp_path, lambda ws: [])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: runbook [-h] [--version] COMMAND ...\n")
    assert "    check     parse and statically check runbook files\n" in result.stderr
    assert result.stderr.endswith("\nrunbook: error: a command is required\n")


def test_real_process_help_and_a_usage_error(tmp_path):
    """argparse ends these by raising SystemExit: the program leaves with its status."""
    (tmp_path / "help").mkdir()
    (tmp_path / "usage").mkdir()
    shown_help = in_both(tmp_path / "help", lambda ws: ["run", "--help"])
    assert (shown_help.exit_code, shown_help.stderr) == (0, "")
    assert shown_help.stdout.startswith("usage: runbook run [-h] [--dry-run]")
    refused = in_both(tmp_path / "usage", lambda ws: ["run"])
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr.endswith("the following arguments are required: FILE\n")


def big_ast(ws: Workspace) -> list[str]:
    """`check --ast` of a file whose AST is several megabytes of JSON."""
    book = ws.root / "big.runbook"
    book.write_text("".join(f'step s{i} "S{i}" {{\n  run "echo {i}"\n}}\n\n'
                            for i in range(1000)), encoding="utf-8")
    return ["check", "--ast", str(book)]


def test_real_process_writes_all_of_a_long_output_before_it_exits(tmp_path):
    """The program leaves without Python's teardown (cli.entry): everything it printed is
    flushed first, the same bytes as in-process."""
    result = in_both(tmp_path, big_ast)
    assert result.exit_code == 0
    assert len(result.stdout) > 1_000_000
    assert json.loads(result.stdout)["kind"] == "file"


def test_real_process_reader_going_away_is_no_error(tmp_path):
    ws = Workspace(tmp_path)
    args = big_ast(ws)
    proc = subprocess.Popen(ws.command(*args), cwd=ws.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10)
    proc.stdout.close()  # as `| head -c 10` does
    with proc.stderr:
        err = proc.stderr.read()
    assert (proc.wait(timeout=60), err) == (0, b"")


def test_real_process_with_stdout_or_stderr_closed(tmp_path):
    """`runbook check FILE >&-` (or `2>&-`): Python has no stream there, and the command's
    own status is still the program's, with no traceback."""
    ws = Workspace(tmp_path)
    (ws.root / "fine.runbook").write_text('step a "A" {\n  run "true"\n}\n')

    def closing(redirect: str, book: str) -> tuple[int, str, str]:
        proc = subprocess.run(["sh", "-c", f'exec "$@" {redirect}', "sh",
                               *ws.command("check", book)], cwd=ws.root, text=True,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                              env=clean_env())
        return proc.returncode, proc.stdout, proc.stderr

    code, _, stderr = closing(">&-", ws.add("static_error"))
    assert code == 2
    assert stderr.startswith("error[E200]: undefined name `nobody_defines_this`\n")
    assert "Traceback" not in stderr
    assert closing("2>&-", "fine.runbook") == (0, "fine.runbook: ok\n", "")


def test_real_process_check(tmp_path):
    result = in_both(tmp_path, lambda ws: ["check", ws.add("static_error")])
    assert result.exit_code == 2
    assert result.stdout == "static_error.runbook: failed (1 error)\n"
    assert result.stderr.startswith("error[E200]: undefined name `nobody_defines_this`\n")


def test_real_process_run(tmp_path):
    result = in_both(tmp_path, lambda ws: ["run", ws.add("policy_rollback")])
    assert result.exit_code == 1
    assert "↺ rolling back after four: four, three, two, one" in result.stdout
    assert "run rolled_back (exit 1)" in result.stdout


def test_real_process_run_dry_run(tmp_path):
    result = in_both(tmp_path, lambda ws: ["run", ws.add("control_flow"), "--dry-run",
                                           "--fail-at", "finish"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Plan for control_flow.runbook")


def test_real_process_resume(tmp_path):
    result = in_both(tmp_path, lambda ws: ["resume", failed_then_fixed(ws)])
    assert result.exit_code == 0
    assert "(failed); 2 finished steps kept" in result.stdout


def test_real_process_approve(tmp_path):
    def prepare(ws):
        return ["approve", paused_at_a_gate(ws), "release_gate", "--as", "alice"]

    result = in_both(tmp_path, prepare)
    assert result.exit_code == 0
    assert "recorded: alice approves gate release_gate of run " in result.stdout


def test_real_process_fmt(tmp_path):
    def prepare(ws):
        (ws.root / "messy.runbook").write_text('step a "A" {\nrun "true"\n}\n')
        return ["fmt", "messy.runbook"]

    result = in_both(tmp_path, prepare)
    assert result.exit_code == 0
    assert (tmp_path / "process" / "messy.runbook").read_text() == \
        (tmp_path / "in-process" / "messy.runbook").read_text() == \
        'step a "A" {\n  run "true"\n}\n'


def test_real_process_list(tmp_path):
    result = in_both(tmp_path, lambda ws: ["list", ws.add("control_when")])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == ["1", "step", "announce", "Always", "runs"]


def test_real_process_view(tmp_path):
    result = in_both(tmp_path, lambda ws: ["view", ws.add("control_when"), "--format", "html"])
    assert result.exit_code == 0
    assert "<h1>Conditional steps</h1>" in result.stdout


def test_real_process_init(tmp_path):
    result = in_both(tmp_path, lambda ws: ["init", "new.runbook", "--template", "deploy"])
    assert result.exit_code == 0
    assert result.stdout == "wrote new.runbook (template deploy); next: runbook check " \
        "new.runbook\n"
    assert (tmp_path / "process" / "new.runbook").read_bytes() == \
        (tmp_path / "in-process" / "new.runbook").read_bytes()


def test_real_process_verify(tmp_path):
    result = in_both(tmp_path, lambda ws: ["verify", failed_then_fixed(ws)])
    assert result.exit_code == 0
    assert result.stdout.startswith("ok: ")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_real_process_show(tmp_path, fmt):
    result = in_both(tmp_path, lambda ws: ["show", paused_at_a_gate(ws), "--format", fmt])
    assert result.exit_code == 0
    assert "release_gate" in result.stdout


def test_real_process_history(tmp_path):
    def prepare(ws):
        paused_at_a_gate(ws)
        return ["history"]

    result = in_both(tmp_path, prepare)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].split()[1:4] == ["resume_gate.runbook", "paused",
                                                          "tester"]
