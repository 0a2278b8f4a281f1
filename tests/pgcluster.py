"""A throwaway PostgreSQL cluster for the team-store tests, and the fixtures that use it.

One cluster per test session (per xdist worker): `initdb` into a temporary directory, the
server on a free port of 127.0.0.1, stopped at the end with nothing left running. The server
runs as an unprivileged OS user (`postgres` where it exists, else a dedicated one), because
PostgreSQL refuses to run as root. Password authentication is SCRAM over TCP, as a team would
set it up; the only other way in is `trust` for the bootstrap superuser over the Unix socket in
the cluster's own 0700 directory, which the fixture needs to create the roles.

Roles: `store_owner` (runs `init`, owns the schema), `alice`, `bob`, `carol` and `runner` with
passwords, and `dave` with no group role. After the template store is initialised, `runner`
and `alice` are granted `runbook_runner`, `alice`, `bob` and `carol` `runbook_approver`.

Each test that wants a store gets its own database, copied from a template database where
`init` already ran (`pg_store`), or an empty one (`pg_empty_db`); it is dropped afterwards.

Without PostgreSQL the tests skip with a message saying how to install it, except in CI
(`CI=true`), where they fail: a missing server must never pass silently.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROLES = ("alice", "bob", "carol", "runner", "dave")
OWNER = "store_owner"
SUPERUSER = "postgres"
TEMPLATE = "runbook_template"
INSTALL_HINT = ("PostgreSQL's server is not installed: apt-get install postgresql "
                "(or put initdb and pg_ctl on PATH) to run the team-store tests")


def password(role: str) -> str:
    """The test password of a role (distinct per role, so a mix-up cannot authenticate)."""
    return f"pw-{role}-7c1d"


def find_bindir() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`: the newest Debian layout
    first, then PATH."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                        reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    return None


def _server_user() -> str | None:
    """The OS user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "runbook-pgtest"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "runbook-pgtest"], check=True, capture_output=True)
    return "runbook-pgtest"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgCluster:
    """A running test cluster: its directory, port and the bootstrap superuser's socket."""

    root: Path
    bindir: Path
    user: str | None
    port: int = 0
    fsync: bool = False
    watchdog: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        # As the server's user and group only: setgroups([]) drops root's groups too.
        ids = {} if self.user is None else {"user": self.user, "group": self.user,
                                             "extra_groups": []}
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              cwd=self.root, **ids)

    def start(self) -> None:
        """initdb and start the server; retries on another port if the chosen one is taken
        between choosing and binding (other test sessions share the machine)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.user is not None:
            shutil.chown(self.root, self.user, self.user)
        done = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                         "-E", "UTF8", "--locale=C", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        (self.data / "pg_hba.conf").write_text(
            "# The bootstrap superuser over the socket in the cluster's 0700 directory;\n"
            "# everyone else by password (SCRAM) over TCP.\n"
            f"local all {SUPERUSER} trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        last = ""
        for _ in range(5):
            self.port = free_port()
            self._write_config()
            done = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                             str(self.root / "server.log"), "-w", "-t", "60", "start")
            if done.returncode == 0:
                atexit.register(self.stop)
                self._watch()
                return
            last = done.stdout + done.stderr + self._log_tail()
        raise RuntimeError(f"the test PostgreSQL server did not start:\n{last}")

    def _write_config(self) -> None:
        # Speed for tests: no fsync (the benchmark turns it back on), but commits stay
        # synchronous, as the store asks for.
        (self.data / "postgresql.auto.conf").write_text("\n".join([
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.root}'",
            "password_encryption = 'scram-sha-256'",
            f"fsync = {'on' if self.fsync else 'off'}",
            f"full_page_writes = {'on' if self.fsync else 'off'}",
            "synchronous_commit = on",
            "shared_buffers = '32MB'",
            "max_connections = 60",
            "log_min_messages = warning",
            "",
        ]))

    def _watch(self) -> None:
        """A small shell that stops the server should this process die without cleaning up
        (killed, or a crash): nothing of a test session may outlive it."""
        script = ('while kill -0 "$0" 2>/dev/null && [ -f "$1/postmaster.pid" ]; do sleep 1; done; '
                  '[ -f "$1/postmaster.pid" ] && kill -QUIT "$(head -n 1 "$1/postmaster.pid")"; '
                  'sleep 1; rm -rf "$2"')
        self.watchdog = subprocess.Popen(
            ["sh", "-c", script, str(os.getpid()), str(self.data), str(self.root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text()[-2000:]
        return ""

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory; harmless twice."""
        if self.watchdog is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.watchdog.pid, signal.SIGKILL)  # the shell and its sleep
            self.watchdog.wait()
            self.watchdog = None
        if self.data.is_dir():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, role: str, database: str) -> str:
        """A connection URL as a user writes it, with the role's password."""
        return f"postgresql://{role}:{password(role)}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres"):
        """A superuser connection over the socket (autocommit), for setting up and tearing
        down; tests never use it for what they assert."""
        import psycopg

        return psycopg.connect(host=str(self.root), port=self.port, user=SUPERUSER,
                               dbname=database, autocommit=True)

    def create_roles(self) -> None:
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {OWNER} LOGIN CREATEROLE CREATEDB "
                         f"PASSWORD '{password(OWNER)}'")
            for role in ROLES:
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password(role)}'")


_counter = itertools.count()


def new_database(cluster: PgCluster, template: str) -> str:
    """A new database owned by the store owner, copied from `template`."""
    name = f"t{os.getpid()}_{next(_counter)}"
    with cluster.admin() as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {OWNER} TEMPLATE {template}")
    return name


def drop_database(cluster: PgCluster, name: str) -> None:
    with cluster.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _unavailable(reason: str, module: bool = False) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the team-store tests must run)", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


def require_psycopg():
    """psycopg for a test module: skipped without it locally, a failure in CI."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed: pip install -e '.[test]'", module=True)
    return psycopg


def start_cluster(fsync: bool = False) -> PgCluster:
    """Start a cluster with the test roles (for the fixtures and the benchmark)."""
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError(INSTALL_HINT)
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="rbpg-")), bindir, _server_user(),
                        fsync=fsync)
    try:
        cluster.start()
        cluster.create_roles()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def store_database(cluster: PgCluster, name: str,
                   members: dict[str, tuple[str, ...]]) -> None:
    """Create database `name` with an initialised store, its groups granted to the roles
    `members` names (for the fixtures and the benchmarks)."""
    from runbook_lang.store.pg import PgStore

    with cluster.admin() as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {OWNER} TEMPLATE template0")
    with PgStore.connect(cluster.url(OWNER, name)) as store:
        store.init()
        for group, roles in members.items():
            for role in roles:
                store.conn.execute(f"GRANT {group} TO {role}")


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's cluster, with the template store initialised and the roles granted."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed: pip install -e '.[test]'")
    if find_bindir() is None:
        _unavailable(INSTALL_HINT)
    cluster = start_cluster()
    try:
        store_database(cluster, TEMPLATE, {"runbook_runner": ("runner", "alice"),
                                            "runbook_approver": ("alice", "bob", "carol")})
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_store(pg_cluster: PgCluster):
    """A fresh database holding an initialised store; yields a function role -> URL."""
    name = new_database(pg_cluster, TEMPLATE)
    try:
        yield lambda role: pg_cluster.url(role, name)
    finally:
        drop_database(pg_cluster, name)


@pytest.fixture
def pg_empty_db(pg_cluster: PgCluster):
    """A fresh empty database owned by the store owner; yields a function role -> URL."""
    name = new_database(pg_cluster, "template0")
    try:
        yield lambda role: pg_cluster.url(role, name)
    finally:
        drop_database(pg_cluster, name)


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
