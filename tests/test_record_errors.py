"""When the record itself cannot be written or read (LANGUAGE.md §9): a clear message, the
right exit code, nothing run unrecorded, and a record that verifies up to the failure."""

import json
import subprocess

import pytest
from conftest import run_dirs


@pytest.fixture
def small_disk(tmp_path_factory):
    """A 256 KiB tmpfs: a folder that fills up."""
    where = tmp_path_factory.mktemp("small-disk")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_mid_run_stops_the_run_with_a_clear_message(ws, small_disk):
    result = ws.run("record_disk_full", "--transcript-dir", str(small_disk))
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.stderr
    assert "runbook resume" in result.stderr
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert not (ws.root / "trail.txt").exists()  # nothing ran after the failure
    (run_dir,) = run_dirs(small_disk)
    verified = ws.runbook("verify", str(run_dir))
    # Every complete record verifies; at most a torn last line or the log cut short by the
    # full disk are reported.
    problems = [line for line in verified.stdout.splitlines()
                if line.startswith(("FAILED", "  also"))]
    assert all("torn" in line or "output log" in line for line in problems), verified.stdout


def test_a_read_only_transcript_folder_is_refused_before_anything_runs(ws, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        result = ws.run("record_disk_full", "--transcript-dir", str(folder))
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert result.exit_code == 2
    assert "cannot create the run's record" in result.stderr
    assert "Read-only file system" in result.stderr
    assert "nothing was run" in result.stderr


def test_a_transcript_dir_that_is_a_file_is_refused(ws):
    (ws.root / "afile").write_text("x")
    result = ws.run("record_disk_full", "--transcript-dir", "afile")
    assert result.exit_code == 2
    assert "cannot create the run's record" in result.stderr
    assert "internal error" not in result.output


@pytest.mark.parametrize("command", ["show", "verify"])
def test_show_and_verify_of_a_missing_file_say_so(ws, command):
    result = ws.runbook(command, "no/such/transcript.jsonl")
    assert result.exit_code == 2
    assert "no transcript at 'no/such/transcript.jsonl'" in result.stderr


def test_verify_checks_the_file_it_is_given(ws):
    assert ws.run("run_basics").exit_code == 0
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    copy = ws.root / "copy.jsonl"
    lines = (run_dir / "transcript.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    record["event"] = "edited"
    copy.write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")
    assert ws.runbook("verify", str(run_dir / "transcript.jsonl")).exit_code == 0
    edited = ws.runbook("verify", str(copy))
    assert edited.exit_code == 1
    assert "line 2" in edited.stdout
