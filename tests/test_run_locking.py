"""One run at a time per runbook and environment (LANGUAGE.md §6.5, §10)."""

from conftest import read_transcript, run_dirs, wait_for


def test_a_second_run_of_the_same_environment_is_refused_at_once(ws):
    name = ws.add("lock_hold")
    holder = ws.start("run", name)
    try:
        wait_for((ws.root / "started-staging.txt").exists, what="the first run to hold")
        (held,) = run_dirs(ws.root / ".runbook" / "runs")

        refused = ws.runbook("run", name, timeout=20)
        assert refused.exit_code == 2
        assert f"another run holds the lock: run {held.name}" in refused.stderr
        assert f"pid {holder.pid}" in refused.stderr

        (ws.root / "release-production.txt").touch()
        other = ws.runbook("run", name, "--param", "environment=production", timeout=20)
        assert other.exit_code == 0, other.output

        plan = ws.runbook("run", name, "--dry-run", timeout=20)
        assert plan.exit_code == 0, plan.output
    finally:
        (ws.root / "release-staging.txt").touch()
        stdout, stderr = holder.communicate(timeout=30)
    assert holder.returncode == 0, stdout + stderr
    runs = run_dirs(ws.root / ".runbook" / "runs")
    environments = sorted(read_transcript(d)[0]["params"]["environment"] for d in runs)
    assert environments == ["production", "staging"]  # the refused run recorded nothing


def test_the_lock_is_released_when_the_run_ends(ws):
    (ws.root / "release-staging.txt").touch()
    assert ws.run("lock_hold").exit_code == 0
    assert ws.run("lock_hold").exit_code == 0


def test_the_lock_note_is_the_json_of_its_holder_and_live_process_groups(tmp_path):
    """The note names the holder and each command's process group while it runs; the
    note on disk is always whole JSON of what the lock knows (padded with blanks)."""
    import json

    from runbook_lang.store.locks import FileLock

    path = tmp_path / "locks" / "a.lock"
    lock = FileLock.acquire(path, {"run_id": "r1", "user": "ops"})
    on_disk = lambda: json.loads(path.read_text())  # noqa: E731
    assert on_disk() == lock.note and "processes" not in on_disk()
    first = {"pgid": 10, "start": "b:1", "host": "local"}
    second = {"pgid": 11, "start": "b:2", "host": "local"}
    lock.note_process(first)
    assert on_disk()["processes"] == [first]
    lock.note_process(second)
    assert on_disk()["processes"] == [first, second]
    lock.clear_process(first)
    lock.note_process({"pgid": 12, "start": "b:3", "host": "local"})
    assert on_disk() == lock.note
    assert [group["pgid"] for group in on_disk()["processes"]] == [11, 12]
    assert {k: v for k, v in on_disk().items() if k != "processes"} == {
        "run_id": "r1", "user": "ops", "pid": lock.note["pid"], "since": lock.note["since"]}
    lock.release()
