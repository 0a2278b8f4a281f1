"""What an inventory is once read: hosts in inventory order, groups, and the errors that
name what is wrong with them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..dataclass import dataclass, field
from ..errors import RunbookError, UsageError
from ..syntax.diagnostics import Diagnostic, Location
from .connection import SettingError, SshHost, check_host_name


class TargetError(UsageError):
    """A step or `--limit` names hosts that do not exist, or selects none (exit 2)."""


class InventoryError(RunbookError):
    """An inventory that cannot be used; `diagnostics` say where and why."""

    def __init__(self, diagnostics: list[Diagnostic], text: str = "") -> None:
        super().__init__("\n".join(_brief(d) for d in diagnostics))
        self.diagnostics = diagnostics
        self.text = text

    def lines_of(self, path: str, line: int) -> str:
        """A line of the inventory, for `render_text`."""
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


def _brief(d: Diagnostic) -> str:
    where = f"{d.location.path}:{d.location.line}:{d.location.column}: " if d.location else ""
    return f"{where}{d.severity}[{d.code}]: {d.message}"


@dataclass(frozen=True)
class Host:
    """One host: its name, the groups it belongs to (`all` included), its merged vars, and
    how to reach it."""

    name: str
    groups: tuple[str, ...]
    vars: Mapping[str, Any]
    ssh: SshHost
    connection: str = "ssh"  # or "local" (`ansible_connection: local`)


@dataclass
class Group:
    """A group as the file defines it; `hosts` are its own and its descendants', in
    inventory order."""

    name: str
    depth: int = 0
    hosts: tuple[str, ...] = ()
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    direct: dict[str, None] = field(default_factory=dict)  # its own hosts (ordered)
    location: Location | None = None


@dataclass
class Inventory:
    """Hosts (in inventory order) and groups. `path` is None for a plain host list."""

    path: str | None
    hosts: dict[str, Host]
    groups: dict[str, Group]

    @classmethod
    def from_names(cls, names: list[str]) -> Inventory:
        """A host list without an inventory (`on ["web1", "web2"]`): each name is an ssh
        destination (an ssh_config alias or a host name), with no vars."""
        hosts: dict[str, Host] = {}
        for name in names:
            try:
                check_host_name(name)
            except SettingError as exc:
                raise TargetError(str(exc)) from None
            hosts.setdefault(name, Host(name, ("all", "ungrouped"), {}, SshHost(name)))
        order = tuple(hosts)
        groups = {"all": Group("all", 0, order, children=["ungrouped"]),
                  "ungrouped": Group("ungrouped", 1, order, parents=["all"],
                                     direct=dict.fromkeys(order))}
        return cls(None, hosts, groups)

    def groups_map(self) -> dict[str, list[str]]:
        """Group name -> its host names, in inventory order (Ansible's `groups`)."""
        return {name: list(group.hosts) for name, group in self.groups.items()}

    def hostvars(self) -> dict[str, dict[str, Any]]:
        """Host name -> its merged vars (Ansible's `hostvars`)."""
        return {name: dict(host.vars) for name, host in self.hosts.items()}


