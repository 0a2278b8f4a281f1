#!/usr/bin/env python3
"""A local demo fleet for the examples in this directory: one OpenSSH server on 127.0.0.1,
reached under four host names, each with a directory of its own.

    python3 examples/fleet/demo_fleet.py start [DIR]   # prints the export to use
    python3 examples/fleet/demo_fleet.py stop [DIR]

`start` generates a host key and a client key in DIR (default: `.work/fleet` next to this
file), starts `sshd` on a free port, and writes `DIR/ssh_config`, where `web1` … `web4`
all reach that server and each sends `APP_ROOT=DIR/hosts/NAME` (the directory that plays
that host's `/srv/app`). Host keys are checked against `DIR/known_hosts`. It needs
OpenSSH's server (`apt-get install openssh-server`, `brew` has it built in) and the client.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOSTS = ("web1", "web2", "web3", "web4")
DEFAULT = Path(__file__).resolve().parent / ".work" / "fleet"


def find_sshd() -> str:
    for candidate in (shutil.which("sshd"), "/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("sshd not found: install OpenSSH's server (apt-get install openssh-server)")


def keygen(path: Path) -> None:
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "demo-fleet",
                        "-f", str(path)], check=True, stdin=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running(root: Path) -> int | None:
    """The pid of the fleet's sshd, when it runs."""
    try:
        pid = int((root / "sshd.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start(root: Path) -> None:
    if running(root):
        print(f"export RUNBOOK_SSH_CONFIG={root / 'ssh_config'}   # already running")
        return
    sshd = find_sshd()
    root.mkdir(parents=True, exist_ok=True)
    keygen(root / "host_key")
    keygen(root / "client_key")
    shutil.copy(root / "client_key.pub", root / "authorized_keys")
    for name in HOSTS:
        (root / "hosts" / name).mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
    port = free_port()
    (root / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AcceptEnv APP_ROOT
MaxStartups 100
MaxSessions 100
""")
    log = open(root / "sshd.log", "ab")  # noqa: SIM115  (sshd keeps writing to it)
    # -D -e keeps sshd in the foreground of a new session; we do not wait for it.
    subprocess.Popen([sshd, "-D", "-e", "-f", str(root / "sshd_config")],
                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 10
    while b"Server listening" not in (root / "sshd.log").read_bytes():
        if time.monotonic() > deadline:
            sys.exit(f"sshd did not start; see {root / 'sshd.log'}")
        time.sleep(0.05)
    key = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {key[0]} {key[1]}\n")
    blocks = [f"Host {name}\n  SetEnv APP_ROOT={root}/hosts/{name}\n" for name in HOSTS]
    blocks.append(f"""\
Host *
  HostName 127.0.0.1
  Port {port}
  User {getpass.getuser()}
  IdentityFile {root}/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {root}/known_hosts
""")
    (root / "ssh_config").write_text("\n".join(blocks))
    print(f"export RUNBOOK_SSH_CONFIG={root / 'ssh_config'}")


def stop(root: Path) -> None:
    pid = running(root)
    if pid is None:
        print("the demo fleet is not running")
        return
    os.kill(pid, signal.SIGTERM)
    (root / "sshd.pid").unlink(missing_ok=True)
    print("stopped")


def main() -> None:
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("start", "stop"):
        sys.exit(f"usage: {sys.argv[0]} start|stop [DIR]")
    root = Path(sys.argv[2]).resolve() if len(sys.argv) == 3 else DEFAULT
    (start if sys.argv[1] == "start" else stop)(root)


if __name__ == "__main__":
    main()
