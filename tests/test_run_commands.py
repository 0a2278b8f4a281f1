"""Commands (LANGUAGE.md §4, §6.1, §7, §10): shell quoting, run/into, env, dir, stdin, exit
codes, timeouts that stop the whole process group, and Ctrl-C / SIGTERM."""

import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import (
    alive,
    clean_env,
    events,
    finished,
    read_pids,
    read_transcript,
    step_order,
    wait_for,
)

PAYLOADS = {
    "semicolon": "x; touch pwned",
    "command-substitution": "$(touch pwned)",
    "backticks": "`touch pwned`",
    "quotes": """it's "quoted" \\ too'; touch pwned; '""",
    "newline": "line one\ntouch pwned",
    "and": "a && touch pwned",
    "pipe": "a | touch pwned",
    "glob-and-vars": "* $HOME ${PATH} ~",
}


def group_alive(pgid: int) -> bool:
    """Whether any live process is left in a process group (zombies do not count)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


# ---------------------------------------------------------------------- quoting


@pytest.mark.parametrize("value", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_an_interpolated_param_is_one_shell_word(ws, value):
    result = ws.run("quoting_param", "--param", f"value={value}")
    assert result.exit_code == 0, result.output
    assert (ws.root / "got.txt").read_text() == value
    assert not (ws.root / "pwned").exists()


def test_raw_inserts_text_as_is(ws):
    result = ws.run("quoting_raw")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "echo one && echo two" in lines
    assert lines.index("one") + 1 == lines.index("two")
    commands = [r["command"] for r in events(result.records(), "command_started")]
    assert commands == ["echo 'echo one && echo two'", "echo one && echo two"]


# ---------------------------------------------------------------------- run, env, dir, stdin


def test_run_into_keeps_trimmed_stdout(ws):
    result = ws.run("run_basics")
    assert result.exit_code == 0, result.output
    values = {r["name"]: r["value"] for r in events(result.records(), "variable_set")}
    assert values["padded"] == "padded value"
    assert values["shown"] == "[padded value]"


def test_env_reaches_every_command_of_the_step_and_its_tasks(ws):
    result = ws.run("run_basics", "--param", "name=team")
    assert result.exit_code == 0, result.output
    assert (ws.root / "env.txt").read_text() == "hello team\ntask sees hello team\n"


def test_dir_runs_commands_in_that_directory(ws):
    result = ws.run("run_basics")
    assert result.exit_code == 0, result.output
    where = ws.root / "sub" / "inner" / "where.txt"
    assert Path(where.read_text().strip()).resolve() == where.parent.resolve()
    started = events(result.records(), "command_started", step="in_dir")[0]
    assert Path(started["cwd"]).resolve() == where.parent.resolve()


def test_a_commands_stdin_is_dev_null(ws):
    # runbook's own stdin is a pipe nobody writes to: a command that inherited it would hang.
    proc = subprocess.Popen(ws.command("run", ws.add("run_basics")), cwd=ws.root,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    assert (ws.root / "stdin.txt").read_text().strip() == "/dev/null"


def test_a_non_zero_exit_fails_the_step_naming_the_exit_code(ws):
    result = ws.run("run_exit_code")
    assert result.exit_code == 1
    assert "✗ breaks failed" in result.stdout
    assert "command exited with 7" in result.stdout
    records = result.records()
    failed = events(records, "step_finished", step="breaks")[0]
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("command exited with 7 (")
    assert failed["reason"].endswith(": about to fail")
    assert events(records, "command_finished")[0]["exit_code"] == 7
    assert finished(records)["status"] == "failed"
    assert finished(records)["failed_step"] == "breaks"
    assert not (ws.root / "after.txt").exists()


# ---------------------------------------------------------------------- timeout


def test_a_timeout_stops_the_whole_process_group(ws):
    result = ws.run("timeout_group")
    assert result.exit_code == 1
    pids = read_pids(ws.root / "pids.txt")
    assert len(pids) == 5  # two sleeps, the nested shells and the step's own shell
    assert [pid for pid in pids if alive(pid)] == []
    records = result.records()
    failed = events(records, "step_finished", step="slow")[0]
    assert failed["status"] == "failed"
    assert "timed out" in failed["reason"]
    assert "timed out" in result.stdout
    assert events(records, "command_finished")[0]["timed_out"] is True
    assert not (ws.root / "after.txt").exists()


def test_a_timeout_bounds_a_wait(ws):
    result = ws.run("timeout_wait")
    assert result.exit_code == 1
    failed = events(result.records(), "step_finished", step="pause")[0]
    assert failed["reason"] == "timed out during `wait 1m`"


# ---------------------------------------------------------------------- signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_interrupts_the_run_and_stops_everything(ws, sig):
    proc = ws.start("run", ws.add("signal_interrupt"))
    pids_file = ws.root / "pids.txt"
    try:
        wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2,
                 what="the hanging step to start")
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout + stderr
    background, shell = read_pids(pids_file)
    assert not alive(background)
    assert not group_alive(shell)
    assert (ws.root / "trail.txt").read_text() == "first\n"
    records = read_transcript(next((ws.root / ".runbook" / "runs").iterdir()))
    assert finished(records)["status"] == "interrupted"
    assert finished(records)["exit_code"] == 130
    assert step_order(records) == ["first", "hang"]
    assert step_order(records, "rollback") == []
    assert step_order(records, "finally") == []
    assert not events(records, "rollback_started")
