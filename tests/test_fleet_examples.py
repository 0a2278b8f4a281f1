"""The SSH examples in examples/fleet/, run for real against the demo fleet their README
starts (`demo_fleet.py`), with the real `runbook` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import events, finished, read_transcript, run_dirs
from sshfleet import INSTALL_HINT, find_sshd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "fleet"
RUNBOOKS = ["rolling.runbook", "canary.runbook"]
HOSTS = ["web1", "web2", "web3", "web4"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo fleet, started with the example's own script; its ssh_config."""
    if find_sshd() is None or shutil.which("ssh") is None:
        message = f"the SSH examples need OpenSSH; {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("demo-fleet")
    script = str(EXAMPLES / "demo_fleet.py")
    started = subprocess.run([sys.executable, script, "start", str(root)],
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert started.stdout == f"export RUNBOOK_SSH_CONFIG={root / 'ssh_config'}\n"
    try:
        yield root
    finally:
        subprocess.run([sys.executable, script, "stop", str(root)], timeout=60)


@pytest.fixture
def fleet_examples(ws, demo):
    """A copy of examples/fleet/ in the workspace; every host's app directory emptied."""
    shutil.copytree(EXAMPLES, ws.root / "fleet", ignore=shutil.ignore_patterns(".work"))
    for host in HOSTS:
        shutil.rmtree(demo / "hosts" / host, ignore_errors=True)
        (demo / "hosts" / host).mkdir(parents=True)
    return demo


def serving(demo: Path) -> dict[str, str]:
    """The release each host's `current` points at."""
    found = {}
    for host in HOSTS:
        current = demo / "hosts" / host / "current"
        if current.is_symlink():
            found[host] = os.readlink(current).removeprefix("releases/")
    return found


def run(ws, demo: Path, name: str, *args: str):
    result = ws.runbook("run", f"fleet/{name}", *args,
                        env={"RUNBOOK_SSH_CONFIG": str(demo / "ssh_config")}, timeout=120)
    dirs = run_dirs(ws.root / ".runbook" / "runs")
    result.transcript = read_transcript(dirs[-1]) if dirs else []
    return result


def test_the_fleet_examples_check_clean_and_are_formatted(ws):
    files = [str(EXAMPLES / name) for name in RUNBOOKS]
    checked = ws.runbook("check", *files)
    assert checked.exit_code == 0 and "warning" not in checked.output, checked.output
    assert ws.runbook("fmt", "--check", *files).exit_code == 0


@pytest.mark.parametrize("name", RUNBOOKS)
def test_dry_run_lists_the_batches_without_connecting(ws, fleet_examples, name):
    log = fleet_examples / "sshd.log"
    before = log.read_text().count("Accepted publickey")
    result = ws.runbook("run", "--dry-run", f"fleet/{name}",
                        env={"RUNBOOK_SSH_CONFIG": str(fleet_examples / "ssh_config")})
    assert result.exit_code == 0, result.output
    assert "batch 1: " in result.stdout and "Outcome: succeeded" in result.stdout
    assert log.read_text().count("Accepted publickey") == before
    assert serving(fleet_examples) == {}


def test_the_rolling_deploy_and_its_broken_release(ws, fleet_examples):
    good = run(ws, fleet_examples, "rolling.runbook")
    assert good.exit_code == 0, good.output
    assert serving(fleet_examples) == dict.fromkeys(HOSTS, "1.5.0")
    batches = [r["hosts"] for r in events(good.transcript, "batch_started", step="deploy")]
    assert batches == [["web1", "web2"], ["web3", "web4"]]
    assert ws.runbook("verify", run_dirs(ws.root / ".runbook" / "runs")[-1].name).exit_code == 0

    broken = run(ws, fleet_examples, "rolling.runbook", "--param", "version=2.0.0-broken")
    assert broken.exit_code == 1, broken.output
    assert finished(broken.transcript)["status"] == "rolled_back"
    [verdict] = events(broken.transcript, "hosts_finished", step="deploy")
    assert verdict["failed"] == ["web1", "web2"] and verdict["not_started"] == ["web3", "web4"]
    assert serving(fleet_examples) == dict.fromkeys(HOSTS, "1.5.0")


def test_the_canary_and_its_broken_release(ws, fleet_examples):
    good = run(ws, fleet_examples, "canary.runbook")
    assert good.exit_code == 0, good.output
    assert serving(fleet_examples) == dict.fromkeys(HOSTS, "1.5.0")

    broken = run(ws, fleet_examples, "canary.runbook", "--param", "version=2.0.0-broken")
    assert broken.exit_code == 1, broken.output
    assert finished(broken.transcript)["status"] == "rolled_back"
    assert "the canary web1 is back on 1.5.0" in broken.stdout
    assert not events(broken.transcript, "step_started", step="promote[web2]")
    assert serving(fleet_examples) == dict.fromkeys(HOSTS, "1.5.0")
    touched = [p.name for p in (fleet_examples / "hosts").glob("web[2-4]/releases/*")]
    assert "2.0.0-broken" not in touched
