"""Shared helpers for the behavioural tests: the `runbook` command in a temporary directory
(in this process, or a real process where a test needs one), the fixtures under
`tests/fixtures/run/`, transcripts, a local HTTP server, and normalisation of what changes
from run to run (times, ids, hosts, paths, hashes).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import harness
import pytest
from harness import call_main, decode
from hypothesis import HealthCheck, settings
from keys import agent, no_outside_agent  # noqa: F401  (a real ssh-agent, see keys.py)

# The team-store fixtures, for every test module (a throwaway PostgreSQL cluster).
from pgcluster import pg_cluster, pg_empty_db, pg_store  # noqa: F401
from pgruns import pg_as, pg_paused, pg_runner  # noqa: F401
from sshfleet import fleet  # noqa: F401  (the SSH test fleet: a real sshd, see sshfleet.py)

from runbook_lang import __version__
from runbook_lang.executors.local import group_alive

# Generated cases (hypothesis): a bounded number in CI, a long search on demand with
# HYPOTHESIS_PROFILE=long. No deadline: the cases run real shells on a shared machine.
settings.register_profile("ci", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "run"
RUNBOOK = Path(sys.executable).with_name("runbook")
OPERATOR = "tester"
CANARY = "canary-7f3a9c1e5b2d"
_IMPORT = re.compile(r'import\s+"\./([^"]+)"')


def pytest_addoption(parser) -> None:
    parser.addoption("--real-processes", action="store_true",
                     help="run every `runbook` call in a real process, not in-process "
                          "(slower; tells a harness problem from a product one)")


def pytest_configure(config) -> None:
    harness.REAL_PROCESSES = config.getoption("--real-processes")


def pytest_sessionfinish(session, exitstatus) -> None:
    for sock in _RESERVED:
        sock.close()


def fixture_path(name: str) -> Path:
    """A fixture file by name, with or without the `.runbook` suffix."""
    return FIXTURES / (name if name.endswith(".runbook") else f"{name}.runbook")


# Run locks of the tests' runbooks, apart from the user's own (~/.runbook/locks).
LOCK_DIR = Path(tempfile.mkdtemp(prefix="runbook-test-locks-"))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a `runbook` process: no colour, a fixed operator, no stray secrets,
    and Python's own output buffering as a user has it (what `runbook` prints reaches a
    pipe only because the program flushes it)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RUNBOOK_", "CANARY", "PYTEST_")) and k != "PYTHONUNBUFFERED"}
    env.update(NO_COLOR="1", RUNBOOK_USER=OPERATOR, LC_ALL="C.UTF-8",
               RUNBOOK_LOCK_DIR=str(LOCK_DIR))
    env.update(extra)
    return env


@dataclass
class Result:
    """What a user sees of one `runbook` command."""

    exit_code: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr

    def run_dirs(self, root: Path | None = None) -> list[Path]:
        """The run directories recorded under the working directory, oldest first."""
        return run_dirs(root or self.cwd / ".runbook" / "runs")

    def records(self) -> list[dict]:
        """The records of the only run this workspace holds."""
        dirs = self.run_dirs()
        assert len(dirs) == 1, f"expected one run, found {[d.name for d in dirs]}"
        return read_transcript(dirs[0])


def run_dirs(root: Path) -> list[Path]:
    """Run directories under `root`, oldest first (run ids sort by start time)."""
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if (d / "transcript.jsonl").is_file())


def read_transcript(run_dir: Path) -> list[dict]:
    """Every record of a run's transcript."""
    text = (run_dir / "transcript.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def events(records: list[dict], name: str, **match) -> list[dict]:
    """The records of one event type, optionally filtered by field values."""
    return [r for r in records if r["event"] == name
            and all(r.get(k) == v for k, v in match.items())]


def step_order(records: list[dict], phase: str = "step") -> list[str]:
    """The steps that started in `phase` (step, rollback, finally), in order, no repeats."""
    names: list[str] = []
    for rec in events(records, "step_started"):
        if rec.get("phase", "step") == phase and rec["step"] not in names:
            names.append(rec["step"])
    return names


def finished(records: list[dict]) -> dict:
    """The run_finished record (the last line of a run that ended)."""
    assert records[-1]["event"] == "run_finished", records[-1]
    return records[-1]


class Workspace:
    """A temporary working directory holding copied fixtures; runs the CLI there."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, name: str, where: Path | None = None) -> str:
        """Copy a fixture (and the local modules it imports) and return its file name."""
        source = fixture_path(name)
        target_dir = where or self.root
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target_dir / source.name)
        for module in _IMPORT.findall(source.read_text(encoding="utf-8")):
            shutil.copy(FIXTURES / module, target_dir / module)
        return source.name

    def command(self, *args: str) -> list[str]:
        return [str(RUNBOOK), *map(str, args)]

    def runbook(self, *args: str, env: dict | None = None, timeout: float = 60,
                cwd: Path | None = None) -> Result:
        """`runbook ARGS…` to completion, in this process (see harness.py): what a user
        sees of it, byte for byte, without starting Python again."""
        where = cwd or self.root
        call = call_main(args, cwd=where, env=clean_env(**(env or {})), timeout=timeout,
                         program=str(RUNBOOK))
        return Result(call.exit_code, decode(call.stdout), decode(call.stderr), where)

    def process(self, *args: str, env: dict | None = None, timeout: float = 60,
                stdin=subprocess.DEVNULL, cwd: Path | None = None) -> Result:
        """`runbook ARGS…` to completion in a real process (the smoke tests, and where a
        test needs what only a process has)."""
        where = cwd or self.root
        proc = subprocess.run(self.command(*args), cwd=where, env=clean_env(**(env or {})),
                              capture_output=True, text=True, timeout=timeout, stdin=stdin)
        return Result(proc.returncode, proc.stdout, proc.stderr, where)

    def run(self, fixture: str, *args: str, env: dict | None = None, **kwargs) -> Result:
        """Copy a fixture and `runbook run` it (in this process)."""
        return self.runbook("run", self.add(fixture), *args, env=env, **kwargs)

    def start(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        """Start `runbook ARGS…` in the background (for signals, locks and crashes)."""
        return subprocess.Popen(self.command(*args), cwd=self.root,
                                env=clean_env(**(env or {})), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def files(self) -> list[str]:
        """Every path under the workspace, relative, sorted (to compare before/after)."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*"))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh workspace in tmp_path."""
    return Workspace(tmp_path)


def run_in_terminal(ws, *args: str, answers: str) -> tuple[int, str]:
    """Run `runbook ARGS…` on a pseudo-terminal, typing `answers`; (exit code, output)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(ws.command(*args), cwd=ws.root, env=clean_env(), stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    os.write(master, answers.encode())
    output = b""
    try:
        while select.select([master], [], [], 30)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: runbook is done
                break
            if not data:
                break
            output += data
        return proc.wait(timeout=30), output.decode()
    finally:
        proc.kill()
        os.close(master)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll until `predicate()` is truthy (for background processes); fail after timeout.

    The timeout is a bound, not a wait: on a busy machine a `runbook` process can take
    seconds just to start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    """Whether a process is running; a zombie counts as gone (init here may not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def read_pids(path: Path) -> list[int]:
    """The pids a command wrote to a file, one per line."""
    return [int(line) for line in path.read_text().split()]


# ---------------------------------------------------------------------- a local HTTP server


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 that records every request it sees."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.trickled = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                server.requests.append({"method": self.command, "path": self.path,
                                        "headers": {k.lower(): v for k, v in
                                                    self.headers.items()},
                                        "body": body})
                if self.path.startswith("/trickle"):
                    self.trickle()
                    return
                status, headers, payload = server.answer(self.path, body, self.headers)
                data = payload.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def trickle(self) -> None:
                """Ten bytes, one every 2 s: each read succeeds, the whole takes 20 s. Stops
                as soon as the client goes away (its socket reads as closed)."""
                self.send_response(200)
                self.send_header("Content-Length", "10")
                self.end_headers()
                try:
                    for _ in range(10):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        server.trickled += 1
                        if select.select([self.connection], [], [], 2)[0]:
                            return
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # shutdown() waits for the serving loop to notice; at the default 0.5 s poll that is
        # half a second per test that uses a server.
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def answer(self, path: str, body: str, headers) -> tuple[int, dict, str]:
        as_json = {"Content-Type": "application/json", "X-Service": "demo"}
        if path.startswith("/ok"):
            return 200, as_json, json.dumps({"status": "ok", "version": "1.4.2"})
        if path.startswith("/redirect"):
            return 302, {"Location": "/ok"}, ""
        if path.startswith("/fail"):
            return 500, as_json, json.dumps({"status": "error"})
        if path.startswith("/echo"):
            sent = {k.lower(): v for k, v in headers.items()}
            return 200, as_json, json.dumps({"headers": sent, "body": body})
        return 404, as_json, json.dumps({"status": "not found"})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    """A local HTTP server for one test."""
    srv = Server()
    yield srv
    srv.close()


# Sockets bound (never listening) for the rest of the session: see closed_port().
_RESERVED: list[socket.socket] = []


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused).

    The socket stays bound without listening, so the port stays refused: released, another
    test (another xdist worker, a demo service) could be given it and answer on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    return sock.getsockname()[1]


# ---------------------------------------------------------------------- normalisation

_HOST = socket.gethostname()


def normalise(text: str, root: Path | None = None) -> str:
    """Replace what differs between runs: times, run ids, hosts, users, tmp paths, SHA-256s
    and the tool version. Durations written in a runbook stay as written."""
    if root is not None:
        text = text.replace(str(root.resolve()), "<tmp>").replace(str(root), "<tmp>")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>", text)
    text = re.sub(r"\d{8}T\d{6}(\d{3})?Z-[0-9a-f]{6}", "<run-id>", text)
    text = re.sub(r"\b[0-9a-f]{64}\b", "<sha256>", text)
    text = re.sub(rf"(?<![\w.]){re.escape(__version__)}(?![\w.])", "<version>", text)
    if _HOST:
        text = re.sub(rf"\b{re.escape(_HOST)}\b", "<host>", text)
    return text.replace(OPERATOR, "<user>")


def normalise_measured(text: str, root: Path | None = None) -> str:
    """`normalise`, measured durations too (a report's `in 12 ms`, `duration_ms`), and the
    time of day a report's timeline gives each action (`16:02:24.551`)."""
    text = normalise(text, root)
    text = re.sub(r"\b\d\d:\d\d:\d\d\.\d{3}\b", "<clock>", text)
    text = re.sub(r"\b\d+ ms\b", "<n> ms", text)
    text = re.sub(r'("duration_ms": )\d+', r'\1"<n>"', text)
    return re.sub(r"\b\d+\.\d\ds\b", "<n>s", text)


def signal_mid_step(ws, fixture: str, sig: int) -> subprocess.Popen:
    """Run a fixture until its hanging step wrote its group's pid to pid.txt, send `sig` to
    runbook, and return the finished process. After kill -9 nothing stops the step's process
    group, so this does (tests must leave nothing running)."""
    proc = ws.start("run", ws.add(fixture))
    pid_file = ws.root / "pid.txt"
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 what="the hanging step")
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        for pgid in read_pids(pid_file) if pid_file.exists() else []:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            # A kill is delivered, not done: the next run must not find the group alive.
            wait_for(lambda pgid=pgid: not group_alive(pgid), what=f"group {pgid} to end")
    return proc
