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
