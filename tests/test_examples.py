"""The example runbooks in examples/, run for real with the `runbook` command.

Each run happens in a temporary copy of examples/, so the demo services, their pidfiles and
the transcripts stay out of the checkout. After each run: the transcript verifies, and no
process started from the copy is left, nor any port it listened on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from conftest import events, finished, normalise, read_transcript, run_dirs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STDLIB = ROOT / "stdlib"
RUNBOOKS = sorted(p.name for p in EXAMPLES.glob("*.runbook") if p.is_file())
MODULES = sorted(p for p in [*EXAMPLES.glob("lib/*.runbook"), *STDLIB.glob("*.runbook")]
                 if p.is_file())

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(),
                                reason="leftover processes are found through /proc")


@pytest.fixture
def examples(ws) -> Path:
    """A copy of examples/ in the workspace, without work folders or transcripts."""
    target = ws.root / "examples"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".work", ".runbook"))
    yield target
    # Whatever a test left behind is stopped, so one failure does not leak servers.
    leftovers = processes_under(ws.root)
    for pid in leftovers:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    assert not leftovers, f"processes left running: {leftovers}"


def processes_under(root: Path) -> list[int]:
    """Live processes whose command line names a path under `root` (the demo servers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # Other programs' command lines and names need not be UTF-8.
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            state = (entry / "stat").read_text(errors="replace").rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if os.fsencode(root) in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ports_in(text: str) -> set[int]:
    """The demo services' ports a run printed (`started pid N on http://127.0.0.1:PORT/`)."""
    return {int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)", text)}


def run_example(ws, name: str, *args: str):
    """`runbook run examples/NAME ARGS…`; the Result gets `.run_dir` and `.transcript`."""
    before = set(run_dirs(ws.root / ".runbook" / "runs"))
    result = ws.runbook("run", f"examples/{name}", *args, timeout=60)
    [result.run_dir] = set(run_dirs(ws.root / ".runbook" / "runs")) - before
    result.transcript = read_transcript(result.run_dir)
    return result


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.status, answer.read().decode()


# ---------------------------------------------------------------------- static


def test_every_runbook_and_module_checks_clean(ws):
    files = [EXAMPLES / name for name in RUNBOOKS] + MODULES
    result = ws.runbook("check", *map(str, files))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_every_runbook_and_module_is_in_the_canonical_layout(ws):
    files = [EXAMPLES / name for name in RUNBOOKS] + MODULES
    result = ws.runbook("fmt", "--check", *map(str, files))
    assert result.exit_code == 0, result.output


def test_the_examples_are_all_there():
    assert set(RUNBOOKS) >= {"hello.runbook", "deploy.runbook", "blue_green.runbook",
                             "canary.runbook", "rolling.runbook", "feature_flags.runbook",
                             "incident.runbook"}


@pytest.mark.parametrize("path", [EXAMPLES / name for name in RUNBOOKS] + MODULES,
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_dry_run_plans_without_changing_anything(ws, examples, path):
    target = examples / path.name if path.parent == EXAMPLES else path
    before = ws.files()
    result = ws.runbook("run", "--dry-run", str(target))
    assert result.exit_code == 0, result.output
    assert "Outcome: succeeded" in result.output
    assert ws.files() == before


def test_dry_run_of_the_deploy_shows_the_rollback_of_a_failed_watch(ws, examples):
    result = ws.runbook("run", "--dry-run", "--fail-at", "watch_errors", "--output", "json",
                        "examples/deploy.runbook")
    assert result.exit_code == 0, result.output  # the plan was made
    plan = json.loads(result.stdout)
    text = json.dumps(plan)
    # Newest first: the switch, the new process, the migration, maintenance mode.
    undo = ["switch", "start_new", "migrate", "maintenance_on"]
    positions = [text.index(f'"undo {name}"') for name in undo]
    assert positions == sorted(positions), text


def test_the_production_gate_only_applies_to_production(ws, examples):
    staging = ws.runbook("run", "--dry-run", "examples/deploy.runbook")
    assert 'approve_prod: Approve the production release of 1.5.0  [skipped: when ' \
        'environment == "production" is false]' in staging.stdout
    production = ws.runbook("run", "--dry-run", "examples/deploy.runbook",
                            "--param", "environment=production")
    assert "[skipped" not in production.stdout
    assert "needs 2 approvals from alice, bob, carol" in production.stdout


# ---------------------------------------------------------------------- real runs


@pytest.mark.slow  # each example waits out its watch windows (seconds)
@pytest.mark.parametrize("name", RUNBOOKS)
def test_example_runs_to_success_and_leaves_nothing_running(ws, examples, name):
    result = run_example(ws, name, "--yes")
    assert result.exit_code == 0, result.output
    assert finished(result.transcript)["status"] == "succeeded"
    verified = ws.runbook("verify", result.run_dir.name)
    assert verified.exit_code == 0, verified.output

    assert processes_under(ws.root) == []
    assert not list(examples.glob(".work/**/*.pid")), "a pidfile was left behind"
    for port in ports_in(result.stdout):
        assert not listening(port), f"port {port} is still open after {name}"


@pytest.mark.slow
def test_deploy_of_a_broken_release_rolls_back_to_the_old_version(ws, examples, server):
    result = run_example(ws, "deploy.runbook", "--param", "version=2.0.0-broken",
                         "--param", "keep_running=true",
                         "--param", f"notify_url={server.url}/echo/hook")
    assert result.exit_code == 1, result.output
    records = result.transcript
    end = finished(records)
    assert (end["status"], end["failed_step"]) == ("rolled_back", "watch_errors")
    [rollback] = events(records, "rollback_started")
    assert rollback["steps"] == ["switch", "start_new", "migrate", "maintenance_on"]
    undone = [(r["step"], r["status"]) for r in events(records, "step_finished")
              if r.get("phase") == "rollback"]
    assert undone == [(step, "rolled_back") for step in rollback["steps"]]
    assert ws.runbook("verify", result.run_dir.name).exit_code == 0
    # The stakeholders' webhook heard how it ended.
    [hook] = [r for r in server.requests if r["path"] == "/echo/hook"]
    assert json.loads(hook["body"])["text"] == \
        f"Deploy of 2.0.0-broken to staging: rolled_back (run {result.run_dir.name})"

    # The old version serves again, behind the router, out of maintenance mode.
    work = examples / ".work" / "deploy"
    port = int((work / "live.port").read_text())
    try:
        assert get(f"http://127.0.0.1:{port}/version") == (200, "1.4.2")
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        assert os.readlink(work / "app" / "current") == "releases/1.4.2"
        assert json.loads((work / "shared" / "data.json").read_text())["schema"] == 1
        assert [p.name for p in work.glob("*.pid")] == ["app-1.4.2.pid"]
    finally:
        for pidfile in work.glob("*.pid"):
            subprocess.run(["sh", str(examples / "app" / "ctl.sh"), "stop", str(pidfile)],
                           check=True, capture_output=True, timeout=20)
    assert not listening(port)


def work_file(examples: Path, path: str) -> str:
    return (examples / ".work" / path).read_text().strip()


# Each pattern's failure path: the run fails where it should, undoes what it should, and
# still leaves nothing running (the examples fixture checks that).
FAILURES = {
    "blue_green": (["--param", "version=2.0.0-broken"], "validate_idle", "rolled_back",
                   lambda ex: work_file(ex, "blue_green/live") == "blue"),
    "canary": (["--param", "version=2.0.0-broken"], "ramp[10]", "rolled_back",
               lambda ex: work_file(ex, "canary/weight") == "0"),
    "rolling": (["--param", "version=2.0.0-broken"], "upgrade[web1]", "rolled_back",
                lambda ex: "web1" in work_file(ex, "rolling/pool").split()),
    "feature_flags": (["--yes", "--param", "defect_rate=40"], "enable[beta]", "rolled_back",
                      lambda ex: json.loads(work_file(ex, "feature_flags/flags.json"))
                      ["flags"]["new_checkout"] == []),
    # Without --yes nobody answers the rollback question: the run stops there, undoing
    # nothing (an incident runbook hands over to people).
    "incident": ([], "mitigate", "failed",
                 lambda ex: os.readlink(ex / ".work/incident/app/current")
                 == "releases/2.0.0-broken"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", FAILURES)
def test_example_failure_path(ws, examples, name):
    args, failed_step, status, state_ok = FAILURES[name]
    result = run_example(ws, f"{name}.runbook", *args)
    assert result.exit_code == 1, result.output
    end = finished(result.transcript)
    assert (end["status"], end["failed_step"]) == (status, failed_step)
    assert state_ok(examples)
    assert ws.runbook("verify", result.run_dir.name).exit_code == 0
    for port in ports_in(result.stdout):
        assert not listening(port)


@pytest.mark.parametrize("name", RUNBOOKS)
def test_plan_of_each_example(ws, examples, snapshot, name):
    """The plan a reviewer reads before approving: every example's dry-run, as text."""
    result = ws.runbook("run", "--dry-run", f"examples/{name}")
    assert result.exit_code == 0, result.output
    assert normalise(result.stdout, ws.root) == snapshot


def test_rollback_plan_of_the_deploy(ws, examples, snapshot):
    """`--fail-at`: the undo blocks that would run, in order, with their commands."""
    result = ws.runbook("run", "--dry-run", "--fail-at", "watch_errors",
                        "examples/deploy.runbook")
    assert result.exit_code == 0, result.output
    assert normalise(result.stdout, ws.root) == snapshot
