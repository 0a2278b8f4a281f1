"""Real SSH keys, allowed-signers files and a real ssh-agent for the signature tests.

Keys are made by `ssh-keygen`; an agent is `ssh-agent -D` on a socket in a private
directory, started by the test that needs it and stopped after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def make_key(path: Path, kind: str, passphrase: str = "") -> Path:
    """A new key pair made by ssh-keygen; the private key's path."""
    bits = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", passphrase, "-C", path.name,
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    return path


def pub_of(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


def public(key: Path) -> str:
    """'TYPE BASE64' of a key pair, as an allowed-signers line wants it."""
    return " ".join(pub_of(key).read_text().split()[:2])


def fingerprint(key: Path) -> str:
    """The key's fingerprint as `ssh-keygen -l` prints it."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub_of(key))],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def write_signers(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


class Agent:
    """An ssh-agent of our own, on a socket in a private directory."""

    def __init__(self, sock: Path, proc: subprocess.Popen) -> None:
        self.sock, self.proc = sock, proc

    def add(self, key: Path, passphrase: str | None = None) -> None:
        env = {**os.environ, "SSH_AUTH_SOCK": str(self.sock)}
        if passphrase is not None:
            # ssh-add reads a passphrase through SSH_ASKPASS when told to; nothing is typed.
            askpass = self.sock.parent / "askpass.sh"
            askpass.write_text(f"#!/bin/sh\necho '{passphrase}'\n")
            askpass.chmod(0o700)
            env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force")
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True,
                       stdin=subprocess.DEVNULL, start_new_session=True, capture_output=True)


@contextmanager
def running_agent() -> Iterator[Agent]:
    """A running ssh-agent, stopped afterwards (SSH_AUTH_SOCK is the caller's to set)."""
    from conftest import wait_for  # here: conftest imports this module's fixtures

    home = Path(tempfile.mkdtemp(prefix="agent-"))  # short: a socket path is < 108 bytes
    sock = home / "sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(sock.exists, what="ssh-agent's socket")
        yield Agent(sock, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


# Fixtures (conftest.py offers them to every module). The modules that sign say
# `pytestmark = pytest.mark.usefixtures("no_outside_agent")`.


@pytest.fixture
def no_outside_agent(monkeypatch):
    """Tests see only the agent they start themselves."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.fixture
def agent(monkeypatch) -> Iterator[Agent]:
    """A running ssh-agent (killed after the test); SSH_AUTH_SOCK points at it."""
    with running_agent() as started:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(started.sock))
        yield started
