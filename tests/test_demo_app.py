"""Tests for the demo web service in examples/app/ that the example runbooks deploy.

Every server is started and stopped the way a runbook does it, through
ctl.sh, on a free port with its files in tmp_path. After each test the
fixture checks that no server process is left and that its port is closed,
because a leaked server would make later deploys (and tests) lie.
"""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import alive

APP = Path(__file__).resolve().parent.parent / "examples" / "app"
CTL = APP / "ctl.sh"
ERROR_RATE = APP / "error_rate.sh"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sh helpers")


def run(*args, timeout=10):
    """Run a helper script, capturing its output.

    capture_output doubles as a check that ctl.sh start detaches properly: if
    the server kept our stdout/stderr pipes open, run() would not return
    until the timeout.
    """
    return subprocess.run(["sh", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def get(url):
    """GET url; return (status, content type, body text), HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers["Content-Type"], e.read().decode()


def get_json(url):
    status, ctype, body = get(url)
    assert ctype == "application/json"
    return status, json.loads(body)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Server:
    """One demo server started through ctl.sh; files live in its own folder."""

    def __init__(self, root, version, name="app"):
        self.release = root / f"release-{name}"
        self.release.mkdir()
        (self.release / "VERSION").write_text(version + "\n")
        self.pidfile = root / f"{name}.pid"
        self.logfile = root / f"{name}.log"
        self.flag = root / f"{name}.maintenance"
        self.port = int(run(CTL, "free-port").stdout)
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = None

    def start(self, *server_options):
        result = run(CTL, "start", self.port, self.release, self.pidfile, self.logfile,
                     *server_options)
        if result.returncode == 0:
            self.pid = int(self.pidfile.read_text())
        return result


@pytest.fixture
def servers(tmp_path):
    """Factory of Servers; on teardown stop them all and check nothing is left."""
    made = []

    def make(version, name="app"):
        server = Server(tmp_path, version, name)
        made.append(server)
        return server

    yield make
    # Stop them all first, so that one failed check does not leak the others.
    stops = [run(CTL, "stop", server.pidfile).returncode for server in made]
    assert stops == [0] * len(made)
    for server in made:
        assert not server.pidfile.exists()
        if server.pid is not None:
            assert not alive(server.pid), f"server pid {server.pid} left running"
            assert not port_open(server.port), f"port {server.port} still open"


def test_good_release_endpoints(servers):
    app = servers("1.4.2")
    started = app.start()
    assert started.returncode == 0, started.stderr
    assert f"started pid {app.pid}" in started.stdout

    assert get_json(app.url + "/health") == (200, {"status": "ok", "version": "1.4.2"})
    assert get(app.url + "/version") == (200, "text/plain; charset=utf-8", "1.4.2")
    status, ctype, page = get(app.url + "/")
    assert status == 200 and ctype.startswith("text/html") and "1.4.2" in page
    assert get_json(app.url + "/nope") == (404, {"status": "not found"})

    status, metrics = get_json(app.url + "/metrics")
    assert status == 200
    assert metrics["error_rate"] == 0.5
    assert metrics["p95_ms"] > 0
    # ctl.sh's own /health probe plus the five requests above, plus this one.
    assert metrics["requests"] >= 6
    assert get_json(app.url + "/metrics")[1]["requests"] == metrics["requests"] + 1

    rate = run(ERROR_RATE, app.url)
    assert (rate.returncode, rate.stdout) == (0, "0.5\n")
    assert run(CTL, "status", app.pidfile).returncode == 0

    # One log line per request, tagged with the version.
    log = app.logfile.read_text()
    assert '[1.4.2] "GET /version HTTP/1.1" 200' in log


def test_broken_release_fails_the_error_rate_watch_not_health(servers):
    app = servers("2.0.0-broken")
    assert app.start().returncode == 0

    # Healthy at first: it is the error-rate watch that must catch it.
    assert get_json(app.url + "/health") == (200, {"status": "ok", "version": "2.0.0-broken"})
    status, metrics = get_json(app.url + "/metrics")
    assert status == 200 and metrics["error_rate"] == 12.0
    rate = run(ERROR_RATE, app.url + "/")
    assert (rate.returncode, float(rate.stdout)) == (0, 12.0)
    assert float(rate.stdout) > 10  # the procedure's "roll back at once" level

    # BROKEN_HEALTH makes its health check fail too, without a restart.
    (app.release / "BROKEN_HEALTH").touch()
    assert get_json(app.url + "/health") == (500, {"status": "error"})


def test_broken_health_flag_is_ignored_by_a_good_release(servers):
    app = servers("1.4.2")
    (app.release / "BROKEN_HEALTH").touch()
    assert app.start().returncode == 0
    assert get_json(app.url + "/health")[0] == 200


def test_maintenance_mode_follows_the_flag_file(servers):
    app = servers("1.4.2")
    assert app.start("--maintenance-flag", app.flag, "--quiet").returncode == 0
    assert get_json(app.url + "/maintenance") == (200, {"status": "ok", "maintenance": False})

    app.flag.touch()
    for path in ("/", "/version", "/maintenance", "/nope"):
        assert get_json(app.url + path) == (503, {"status": "maintenance"}), path
    # Still observable while drained: the runbook keeps probing and watching.
    assert get_json(app.url + "/health")[0] == 200
    assert get_json(app.url + "/metrics")[0] == 200
    assert run(ERROR_RATE, app.url).stdout == "0.5\n"

    app.flag.unlink()
    assert get(app.url + "/version")[::2] == (200, "1.4.2")
    # --quiet: the startup line only, no per-request lines.
    assert "GET /" not in app.logfile.read_text()


def test_stop_leaves_nothing_running(servers):
    app = servers("1.4.2")
    assert app.start().returncode == 0
    assert alive(app.pid) and port_open(app.port)

    stopped = run(CTL, "stop", app.pidfile)
    assert stopped.returncode == 0 and f"stopped pid {app.pid}" in stopped.stdout
    assert not app.pidfile.exists()
    assert not alive(app.pid)
    assert not port_open(app.port)

    # Stopping what is not running is fine; status says it is not running.
    assert run(CTL, "stop", app.pidfile).returncode == 0
    assert run(CTL, "status", app.pidfile).returncode == 1
    assert run(ERROR_RATE, app.url).returncode != 0


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(),
                    reason="ctl.sh tells a stranger from the server by /proc")
def test_stale_pidfile_never_kills_a_stranger(servers):
    app = servers("1.4.2")
    # A pidfile left by a crash, whose pid is now some other program.
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        app.pidfile.write_text(f"{stranger.pid}\n")
        assert run(CTL, "status", app.pidfile).returncode == 1
        assert run(CTL, "stop", app.pidfile).returncode == 0
        assert not app.pidfile.exists()
        assert stranger.poll() is None, "ctl.sh stop signalled a stranger"
    finally:
        stranger.kill()
        stranger.wait()
    # And start replaces a stale pidfile.
    app.pidfile.write_text("999999\n")
    assert app.start().returncode == 0


def test_start_fails_with_the_log_tail(servers):
    first = servers("1.4.2", "first")
    assert first.start().returncode == 0

    # The same pidfile again: refused, the running server is untouched.
    again = first.start()
    assert again.returncode == 1 and "already running" in again.stderr

    # A port somebody else holds: the second server cannot bind, and ctl.sh
    # must not mistake the first server's answer for its own.
    second = servers("1.5.0", "second")
    second.port, second.url = first.port, first.url
    failed = second.start()
    assert failed.returncode == 1
    assert "Address already in use" in failed.stderr
    assert not second.pidfile.exists()
    assert get(first.url + "/version")[2] == "1.4.2"

    # A release without VERSION.
    third = servers("1.6.0", "third")
    (third.release / "VERSION").unlink()
    failed = third.start()
    assert failed.returncode == 1 and "VERSION" in failed.stderr


def test_sigterm_exits_cleanly(tmp_path):
    """Run server.py in the foreground, as ctl.sh does, to see its exit code."""
    (tmp_path / "VERSION").write_text("1.4.2\n")
    pidfile = tmp_path / "app.pid"
    port = int(run(CTL, "free-port").stdout)
    proc = subprocess.Popen(
        [sys.executable, str(APP / "server.py"), "--port", str(port),
         "--release-dir", str(tmp_path), "--pidfile", str(pidfile), "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Bounds, not waits: on a busy machine starting Python alone can take seconds.
        deadline = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pidfile.read_text().strip() == str(proc.pid)
        assert get(f"http://127.0.0.1:{port}/version")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert not pidfile.exists()
    assert not port_open(port)


def test_usage_errors():
    assert run(CTL).returncode == 2
    assert run(CTL, "restart", "x.pid").returncode == 2
    assert run(ERROR_RATE).returncode == 2
