"""A fleet of SSH hosts for the tests: one real OpenSSH server on 127.0.0.1, many aliases.

`Fleet.start()` generates a host key and a client key in a temporary directory, starts
``sshd -D -e -f CONFIG`` on a free port, and writes an ``ssh_config`` whose aliases
``web1`` … ``web5`` and ``db1`` all reach that server, each with state of its own: the alias
sends ``FLEET_HOST=<alias>`` (``SetEnv``, accepted by the server's ``AcceptEnv``), and
``$FLEET_ROOT/$FLEET_HOST`` is a directory holding a file ``name`` with the alias in it.
``down1`` points at a closed port, ``nowhere1`` at a name that does not resolve, and
``badkey1`` offers a key the server does not accept. Host keys are checked: every alias
uses a known_hosts file holding the server's real key.

`Fleet.stop()` ends the server and every process it started, also the commands that tests
left running on the "hosts". `fleet` is the pytest fixture (one fleet per test session and
worker); without sshd the SSH tests skip with the way to install it, except in CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOSTS = ("web1", "web2", "web3", "web4", "web5", "db1")
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
INSTALL_HINT = "install OpenSSH's server: apt-get install -y openssh-server"
_STARTUP_TIMEOUT = 10.0


def find_sshd() -> str | None:
    """The sshd executable, or None when OpenSSH's server is not installed.
    `FLEET_SSHD` names another one (the tests of this module use a missing one)."""
    override = os.environ.get("FLEET_SSHD")
    if override is not None:
        return override if os.access(override, os.X_OK) else None
    found = shutil.which("sshd")
    if found:
        return found
    return next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)


def keygen(path: Path, comment: str) -> Path:
    """A new ed25519 key pair at `path` (and `path`.pub), without a passphrase."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Fleet:
    """A running test sshd and the client-side files that reach it."""

    root: Path
    sshd: str
    port: int = 0
    proc: subprocess.Popen | None = None
    hosts: tuple[str, ...] = HOSTS
    extra_aliases: dict[str, str] = field(default_factory=dict)

    # -- paths ----------------------------------------------------------------------------

    @property
    def state(self) -> Path:
        """$FLEET_ROOT on the "hosts": one directory per alias."""
        return self.root / "state"

    @property
    def home(self) -> Path:
        """$HOME of every session: an empty directory, so that no shell start-up file of
        this machine's user (a slow ~/.bashrc) runs with each command. The login directory
        stays the user's own (sshd changes to the home directory of the password file)."""
        return self.root / "home"

    @property
    def config(self) -> Path:
        """The ssh_config with every alias."""
        return self.root / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        """The known_hosts file with the server's real host key."""
        return self.root / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.root / "id_client"

    @property
    def log(self) -> Path:
        """sshd's log (`-e`): one `Accepted publickey` line per authenticated connection."""
        return self.root / "sshd.log"

    # -- life cycle -----------------------------------------------------------------------

    @classmethod
    def start(cls, root: Path, sshd: str, hosts: tuple[str, ...] = HOSTS) -> Fleet:
        """Generate keys, write the configurations and start sshd; wait until it listens.
        `hosts` are the aliases with state of their own."""
        fleet = cls(root=root, sshd=sshd, hosts=hosts)
        fleet._prepare()
        for attempt in range(3):
            fleet.port = free_port()
            fleet._write_sshd_config()
            if fleet._launch():
                break
            if attempt == 2:
                raise RuntimeError(f"sshd did not start:\n{fleet.log.read_text()}")
        fleet.write_config(fleet.config)
        return fleet

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "owner").write_text(f"{os.getpid()}\n")
        self.home.mkdir(exist_ok=True)
        keygen(self.root / "ssh_host_ed25519_key", "fleet-host")
        keygen(self.client_key, "fleet-client")
        keygen(self.root / "id_stranger", "fleet-stranger")
        keygen(self.root / "other_host_key", "not-the-fleet")
        shutil.copy(self.client_key.with_suffix(".pub"), self.root / "authorized_keys")
        for name in self.hosts:
            (self.state / name).mkdir(parents=True, exist_ok=True)
            (self.state / name / "name").write_text(name + "\n")
        # sshd's privilege separation directory (Debian's package creates it at boot).
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    def _write_sshd_config(self) -> None:
        root = self.root
        (root / "sshd_config").write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {root}/ssh_host_ed25519_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AcceptEnv FLEET_HOST
SetEnv FLEET_ROOT={self.state} HOME={self.home}
MaxStartups 200
MaxSessions 100
LogLevel INFO
""")

    def _launch(self) -> bool:
        self.log.write_bytes(b"")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.sshd, "-D", "-e", "-f", str(self.root / "sshd_config")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # the port was taken meanwhile, or a bad configuration
            if "Server listening on" in self.log.read_text(errors="replace"):
                host_key = (self.root / "ssh_host_ed25519_key.pub").read_text().split()
                self.known_hosts.write_text(
                    f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n")
                return True
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        return False

    def write_config(self, path: Path, *, known_hosts: Path | None = None,
                     key: Path | None = None) -> Path:
        """Write an ssh_config with every alias; `known_hosts` and `key` replace the real
        known_hosts file and the authorized client key (to make checks fail)."""
        known = known_hosts or self.known_hosts
        identity = key or self.client_key
        blocks = []
        for name in self.hosts:
            blocks.append(f"Host {name}\n  SetEnv FLEET_HOST={name}\n")
        blocks.append(f"Host down1\n  Port {free_port()}\n")
        blocks.append("Host nowhere1\n  HostName nowhere1.invalid\n")
        blocks.append(f"Host badkey1\n  IdentityFile {self.root}/id_stranger\n")
        for alias, body in self.extra_aliases.items():
            blocks.append(f"Host {alias}\n{body}")
        # IdentityFile adds up over matching blocks: badkey1 must not also get the good key.
        blocks.append(f"Host * !badkey1\n  IdentityFile {identity}\n")
        blocks.append(f"""\
Host *
  HostName 127.0.0.1
  Port {self.port}
  User {_user()}
  IdentitiesOnly yes
  UserKnownHostsFile {known}
  ConnectTimeout 10
""")
        path.write_text("\n".join(blocks))
        return path

    def wrong_known_hosts(self) -> Path:
        """A known_hosts file that names another key for the server's address."""
        path = self.root / "known_hosts_wrong"
        other = (self.root / "other_host_key.pub").read_text().split()
        path.write_text(f"[127.0.0.1]:{self.port} {other[0]} {other[1]}\n")
        return path

    def accepted(self) -> int:
        """How many connections the server has authenticated so far."""
        return len(re.findall(r"Accepted publickey for ", self.log.read_text(errors="replace")))

    def ssh(self, alias: str, command: str, *, config: Path | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
        """Run one command on an alias with the plain ssh client (for checks and setup)."""
        return subprocess.run(["ssh", "-F", str(config or self.config), "-o", "BatchMode=yes",
                               alias, command], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def processes(self) -> list[int]:
        """Live processes that belong to the fleet: sshd and its descendants, and whatever
        a session started (they carry FLEET_ROOT in their environment)."""
        marker = f"FLEET_ROOT={self.state}".encode()
        table = _process_table()
        found: set[int] = set()
        if self.proc is not None:
            found |= _descendants(self.proc.pid, table)
        for pid in table:
            with contextlib.suppress(OSError):
                if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    found.add(pid)
        return sorted(pid for pid in found if pid != os.getpid() and _live(pid))

    def stop(self) -> None:
        """Stop sshd and every process of the fleet; wait until none is left (bounded)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = self.processes()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc = None


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _process_table() -> dict[int, int]:
    """pid -> parent pid of every process."""
    table: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        table[int(name)] = int(fields[1])
    return table


def _descendants(root: int, table: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


def _live(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] not in (b"Z", b"X")


def reap_abandoned(base: Path = Path("/tmp")) -> None:
    """Stop the fleets of test sessions that were killed before they could stop them (their
    owner is gone): each fleet's own sshd, found by its pid file and its configuration path
    in its command line, and nothing else."""
    for root in base.glob("fleet-*"):
        try:
            owner = int((root / "owner").read_text())
        except (OSError, ValueError):
            continue
        if _live(owner):
            continue
        fleet = Fleet(root=root, sshd="")
        try:
            pid = int((root / "sshd.pid").read_text())
            if str(root / "sshd_config").encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                fleet.proc = _Adopted(pid)  # type: ignore[assignment]
        except (OSError, ValueError):
            pass
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)


class _Adopted:
    """Enough of a Popen for `Fleet.stop()` to stop an sshd this process did not start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def terminate(self) -> None:
        os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or 0)
        while _live(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    """The SSH test fleet, started once per test session (and per xdist worker)."""
    sshd = find_sshd()
    missing = [tool for tool in ("ssh", "ssh-keygen") if shutil.which(tool) is None]
    if sshd is None or missing:
        what = "sshd" if sshd is None else " and ".join(missing)
        message = f"{what} not found: the SSH tests need OpenSSH; {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    reap_abandoned()
    # A short directory: ControlPath sockets and known_hosts paths stay well under limits.
    root = Path(tempfile.mkdtemp(prefix="fleet-", dir="/tmp"))
    fleet = Fleet.start(root, sshd)
    try:
        yield fleet
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
