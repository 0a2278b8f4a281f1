"""Safety rules under pressure: quoting inside quotes, gates and --from, defects inside a
step, duplicate items, patterns, --fail-at targets, type mix-ups, secrets transformed by
builtins, Ctrl-C at a prompt, and the lock seen from another working directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from conftest import clean_env, events, finished, read_transcript, wait_for

CANARY = "Canary-Token-4711"


def test_interpolation_inside_quotes_cannot_inject(ws):
    result = ws.run("harden_quoted_interpolation")
    assert result.exit_code == 0, result.output
    assert not (ws.root / "INJECTED").exists()
    value = "; touch INJECTED; echo"
    assert (ws.root / "seen.txt").read_text() == f"{value}|{value}|"


def test_from_does_not_skip_a_gate(ws):
    result = ws.run("harden_from_gate", "--from", "release")
    assert result.exit_code == 3, result.output
    assert "waiting at gate prod" in result.output
    assert not (ws.root / "trail.txt").exists()


def test_a_defect_inside_a_step_fails_it_and_its_policy_applies(ws):
    result = ws.run("harden_internal_error")
    # on_failure continue on the broken step: its failure is tolerated, the run goes on to
    # `last` and succeeds, nothing undone.
    assert result.exit_code == 0, result.output
    assert "only http:// and https:// URLs are allowed" in result.output
    assert (ws.root / "trail.txt").read_text().split() == ["first", "last"]


def test_repeated_items_get_distinct_step_names(ws):
    result = ws.run("harden_duplicate_items")
    assert result.exit_code == 0, result.output
    records = read_transcript(result.run_dirs()[-1])
    names = [r["step"] for r in events(records, "step_finished")]
    assert names == ["deploy[a]", "deploy[a#2]", "deploy[b]"]


def test_a_pattern_ending_in_dollar_rejects_a_trailing_newline(ws):
    result = ws.run("harden_pattern", "--param", "version=1.0.0\n")
    assert result.exit_code == 2
    assert "does not match the pattern" in result.stderr
    assert not (ws.root / "trail.txt").exists()


def test_fail_at_a_gate_is_refused(ws):
    result = ws.run("harden_fail_at_gate", "--fail-at", "g")
    assert result.exit_code == 2
    assert "is a gate" in result.stderr
    assert not (ws.root / ".runbook" / "runs").exists()


def test_membership_across_types_is_an_error(ws):
    result = ws.run("harden_membership_types")
    assert result.exit_code == 1
    assert "a string is never in a list of int values" in result.output


def test_values_built_from_a_secret_are_masked(ws):
    result = ws.run("harden_derived_secret", env={"CANARY_TOKEN": CANARY})
    assert result.exit_code == 0, result.output
    for form in (CANARY, CANARY.lower(), CANARY.upper(), f"id-{CANARY}"):
        assert form not in result.output
        for path in (ws.root / ".runbook").rglob("*"):
            if path.is_file():
                assert form not in path.read_text(errors="replace"), path


def test_ctrl_c_at_a_confirm_prompt_interrupts_the_run(ws):
    ws.add("harden_prompt_interrupt")
    master, slave = os.openpty()
    proc = subprocess.Popen(ws.command("run", "harden_prompt_interrupt.runbook"), cwd=ws.root,
                            env=clean_env(), stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        proc.kill()
        os.close(master)
    run_dir = sorted((ws.root / ".runbook" / "runs").iterdir())[-1]
    assert finished(read_transcript(run_dir))["status"] == "interrupted"
    assert not (ws.root / "trail.txt").exists()


def test_the_lock_holds_across_working_directories(ws):
    ws.add("harden_lock")
    holder = ws.start("run", "harden_lock.runbook")
    try:
        wait_for(lambda: (ws.root / "started.txt").exists(),
                 what="the first run to take its lock")
        other = ws.root / "elsewhere"
        other.mkdir()
        second = ws.runbook("run", "../harden_lock.runbook", cwd=other)
        assert second.exit_code == 2
        assert "holds the lock" in second.stderr
    finally:
        (ws.root / "release.txt").touch()  # the holder waits for it
        holder.communicate(timeout=30)
    records = read_transcript(sorted((ws.root / ".runbook" / "runs").iterdir())[-1])
    assert finished(records)["status"] == "succeeded"
    # Nothing is written beside the runbook: its folder holds no .runbook/locks.
    assert not (ws.root / ".runbook" / "locks").exists()


def test_a_runbook_on_a_read_only_mount_is_locked_the_same(ws, tmp_path_factory):
    source = tmp_path_factory.mktemp("ro-source")
    # Its commands run in its (read-only) folder: they signal through absolute paths.
    text = (ws.root / ws.add("harden_lock")).read_text()
    for name in ("started.txt", "release.txt"):
        text = text.replace(name, str(ws.root / name))
    (source / "harden_lock.runbook").write_text(text)
    mount = tmp_path_factory.mktemp("ro-mount")
    bound = subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True)
        runbook = str(mount / "harden_lock.runbook")
        holder = ws.start("run", runbook)
        try:
            wait_for(lambda: (ws.root / "started.txt").exists(), what="the first run")
            other = ws.root / "elsewhere"
            other.mkdir()
            second = subprocess.run(ws.command("run", runbook), cwd=other, env=clean_env(),
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 2, second.stdout + second.stderr
            assert "holds the lock" in second.stderr
        finally:
            (ws.root / "release.txt").touch()
            holder.communicate(timeout=30)
        assert holder.returncode == 0
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_numbers_on_the_command_line_are_written_as_in_the_language(ws):
    for value in ("n=1_000", "n=0x10", "ratio=nan", "ratio=inf"):
        result = ws.run("harden_numbers", "--param", value)
        assert result.exit_code == 2, value
        assert "cannot read" in result.stderr
    result = ws.run("harden_numbers", "--param", "n=-3", "--param", "ratio=0.5")
    assert result.exit_code == 0, result.output
    assert (ws.root / "trail.txt").read_text().split() == ["-3", "0.5"]


def test_an_unreadable_secret_file_is_named_as_such(ws):
    (ws.root / "token.d").mkdir()
    result = ws.run("harden_secret_dir")
    assert result.exit_code == 2
    assert "cannot read file token.d" in result.stderr
    assert not (ws.root / ".runbook" / "runs").exists()
