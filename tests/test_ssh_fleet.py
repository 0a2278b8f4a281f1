"""The SSH test fleet itself: it starts, it gives each alias its own state, it leaves
nothing running, and without sshd it skips locally but fails in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sshfleet import HOSTS, Fleet, find_sshd

TESTS = Path(__file__).resolve().parent


def test_aliases_reach_the_server_with_their_own_state(fleet):
    for name in HOSTS:
        result = fleet.ssh(name, 'cat "$FLEET_ROOT/$FLEET_HOST/name"')
        assert (result.returncode, result.stdout) == (0, f"{name}\n")


def test_host_keys_are_checked_by_the_fleets_own_configuration(fleet, tmp_path):
    config = fleet.config.read_text()
    assert "StrictHostKeyChecking" not in config and "/dev/null" not in config
    wrong = fleet.write_config(tmp_path / "wrong", known_hosts=fleet.wrong_known_hosts())
    result = fleet.ssh("web1", "true", config=wrong)
    assert result.returncode == 255 and "Host key verification failed" in result.stderr


def test_stop_ends_the_server_and_everything_it_started():
    root = Path(tempfile.mkdtemp(prefix="fleet-", dir="/tmp"))
    own = Fleet.start(root, find_sshd(), hosts=("solo1",))
    try:
        result = own.ssh("solo1", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")
        daemon = int(result.stdout)
        assert daemon in own.processes()
    finally:
        own.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert own.processes() == []
    assert not Path(f"/proc/{daemon}").exists() or \
        Path(f"/proc/{daemon}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"


def run_without_sshd(ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["FLEET_SSHD"] = "/nonexistent/sshd"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(TESTS / "test_ssh_fleet.py::test_aliases_reach_the_server_with_their_own_state")],
        capture_output=True, text=True, env=env, cwd=TESTS.parent, timeout=300)


def test_without_sshd_the_ssh_tests_skip_locally_and_say_how_to_install_it():
    result = run_without_sshd(None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "apt-get install -y openssh-server" in result.stdout


def test_without_sshd_the_ssh_tests_fail_in_ci():
    result = run_without_sshd("true")
    assert result.returncode != 0, result.stdout
    assert "sshd not found" in result.stdout and "openssh-server" in result.stdout


def test_a_fleet_whose_session_was_killed_is_stopped_by_the_next_one(tmp_path):
    from sshfleet import reap_abandoned

    script = (
        "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from sshfleet import Fleet, find_sshd;"
        "f = Fleet.start(Path(sys.argv[2]), find_sshd(), hosts=('solo1',));"
        "print(f.proc.pid, flush=True); time.sleep(600)")
    root = tmp_path / "fleet-abandoned"
    with subprocess.Popen([sys.executable, "-c", script, str(TESTS), str(root)],
                          stdout=subprocess.PIPE, text=True) as session:
        sshd = int(session.stdout.readline())
        session.kill()  # no teardown: its sshd lives on
    assert Path(f"/proc/{sshd}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    reap_abandoned(tmp_path)
    assert not root.exists()
    stat = Path(f"/proc/{sshd}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in "ZX"
