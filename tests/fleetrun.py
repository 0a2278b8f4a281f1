"""Helpers for the tests of steps on hosts: a workspace with an inventory for the test fleet
(tests/sshfleet.py), the real `runbook` command pointed at the fleet's ssh configuration,
and what the "hosts" hold afterwards.

Every alias of the fleet is the same local sshd; each has a directory of its own,
`$FLEET_ROOT/$FLEET_HOST` (on this machine: `fleet.state / alias`), where the runbooks of
these tests keep what they change.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import Result, Workspace
from sshfleet import Fleet

INVENTORY = """\
all:
  vars:
    tier: all
  children:
    web:
      vars:
        tier: web
        http_port: 8080
      hosts:
        web[1:5]:
      children:
        canary:
          hosts:
            web2:
    db:
      hosts:
        db1:
          tier: primary
    gone:
      hosts:
        down1:
        nowhere1:
"""

# In a command: the host's own directory, and a line appended to its log.
HOST_DIR = '$FLEET_ROOT/$FLEET_HOST'


def log_line(text: str) -> str:
    """A shell command appending `text` (shell words allowed) to the host's log."""
    return f'echo {text} >> {HOST_DIR}/log'


class FleetWorkspace:
    """A workspace that runs runbooks against the test fleet."""

    def __init__(self, ws: Workspace, fleet: Fleet) -> None:
        self.ws = ws
        self.fleet = fleet
        self.root = ws.root
        (self.root / "inventory.yaml").write_text(INVENTORY)

    def write(self, text: str, name: str = "fleet.runbook") -> str:
        """Write a runbook into the workspace; its name."""
        (self.root / name).write_text(textwrap.dedent(text))
        return name

    def runbook(self, *args: str, env: dict | None = None, timeout: float = 120) -> Result:
        """`runbook ARGS…` with the fleet's ssh configuration in RUNBOOK_SSH_CONFIG."""
        merged = {"RUNBOOK_SSH_CONFIG": str(self.fleet.config), **(env or {})}
        return self.ws.runbook(*args, env=merged, timeout=timeout)

    def run(self, name: str, *args: str, **kwargs) -> Result:
        return self.runbook("run", name, *args, **kwargs)

    def start(self, *args: str, env: dict | None = None):
        merged = {"RUNBOOK_SSH_CONFIG": str(self.fleet.config), **(env or {})}
        return self.ws.start(*args, env=merged)

    def host_file(self, host: str, name: str) -> Path:
        return self.fleet.state / host / name

    def log(self, host: str) -> list[str]:
        """The lines a host's log holds (empty when it has none)."""
        path = self.host_file(host, "log")
        return path.read_text().split("\n")[:-1] if path.exists() else []


@pytest.fixture(name="fws")
def fleet_workspace(ws, fleet) -> FleetWorkspace:
    """A workspace for the fleet, with every host's directory emptied first (the fleet is
    shared by the tests of a session)."""
    for host in fleet.hosts:
        directory = fleet.state / host
        for entry in directory.iterdir():
            if entry.name == "name":
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return FleetWorkspace(ws, fleet)
