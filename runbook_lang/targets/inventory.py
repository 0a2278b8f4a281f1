"""Ansible's YAML inventory format, read safely into an `Inventory`.

The file is composed into YAML nodes (safe loading: no tags that build objects), which
keep their line and column, and the nodes are then walked by hand: every problem becomes a
`Diagnostic` pointing into the file (codes E300–E308, docs/diagnostics.md), and the walk
counts what it visits, so aliases that expand a small file into a huge one (a "billion
laughs") stop with a clear error instead of exhausting memory.

Merging follows Ansible: a host's vars are those of `all`, then of its other groups from
the shallowest to the deepest (ties broken by `ansible_group_priority`, then by name),
then its own; later ones win. Hosts keep inventory order: the order in which they first
appear in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..syntax.diagnostics import Diagnostic, Location
from .connection import SettingError, check_host_name
from .merge import build_hosts
from .model import Group, Inventory, InventoryError
from .yamlnodes import NodeReader, Problem, location, read_yaml

MAX_BYTES = 16 << 20
MAX_HOSTS = 100_000
_GROUP_KEYS = ("hosts", "children", "vars")
_LOCAL_CONNECTIONS = ("local",)
_SSH_CONNECTIONS = ("ssh", "smart", "paramiko", "paramiko_ssh")


def load_inventory(path: Path, shown_as: str | None = None) -> Inventory:
    """Read an inventory file; InventoryError (E300–E308) when it cannot be used."""
    shown = shown_as or str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise _file_error(shown, "is a directory, not an inventory file") from None
    except FileNotFoundError:
        raise _file_error(shown, "no such file") from None
    except OSError as exc:
        raise _file_error(shown, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise _file_error(shown, f"larger than {MAX_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _file_error(shown, f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line "
                                 f"{line})") from None
    return parse_inventory(text, shown, base=Path(path).parent)


def _file_error(path: str, why: str) -> InventoryError:
    return InventoryError([Diagnostic("error", "E300", f"inventory {path}: {why}")])


def parse_inventory(text: str, path: str = "<inventory>", base: Path | None = None
                    ) -> Inventory:
    """Parse inventory text (`base`: where relative key and config files are found)."""
    builder = _Builder(path, base, len(text))
    try:
        builder.build(read_yaml(text))
        inventory = builder.inventory()
    except Problem as problem:
        raise InventoryError([*builder.diagnostics, problem.diagnostic(path)], text) from None
    except RecursionError:
        deep = Problem("E305", "groups nest too deeply")
        raise InventoryError([*builder.diagnostics, deep.diagnostic(path)], text) from None
    if builder.diagnostics:
        raise InventoryError(builder.diagnostics, text)
    return inventory


class _Builder:
    """Walks the composed document: groups, hosts and vars, with a diagnostic per problem."""

    def __init__(self, path: str, base: Path | None, size: int) -> None:
        self.path = path
        self.base = base
        self.diagnostics: list[Diagnostic] = []
        self.read = NodeReader(path, self.error, size)
        self.groups: dict[str, Group] = {"all": Group("all")}
        self.order: list[str] = []  # host names, first appearance first
        self.seen: set[str] = set()
        self.host_vars: dict[str, dict[str, Any]] = {}
        self.var_at: dict[tuple[str, str, str], Location | None] = {}  # (kind, owner, var)
        self.host_at: dict[str, Location | None] = {}

    def error(self, code: str, message: str, node, hints: tuple[str, ...] = ()) -> None:
        self.error_at(code, message, location(self.path, node), hints)

    def error_at(self, code: str, message: str, where: Location | None,
                 hints: tuple[str, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic("error", code, message, where, hints))

    # -- structure --------------------------------------------------------------------------

    def build(self, root) -> None:
        if root is None or self.read.is_null(root):
            return
        if not self.read.is_mapping(root):
            self.error("E302", "an inventory is a mapping of group names (`all:` and "
                       "groups); this file holds something else", root,
                       ("Ansible's INI format is not read: convert it with "
                        "`ansible-inventory -i FILE --list --yaml`",))
            return
        for key, value in self.read.pairs(root, what="the inventory"):
            name = self.group_name(key)
            if name is not None:
                self.group(name, value, None if name == "all" else "all", key)

    def group_name(self, key) -> str | None:
        name = self.read.key_text(key)
        if name[:1] in ("!", "&", "~", "-") or not name or any(
                c in name for c in ",:*?[]@ \t"):
            self.error("E303", f"group name `{name}` cannot be used: patterns would misread "
                       "it", key, ("use letters, digits, `_`, `-` and `.`",))
            return None
        return name

    def group(self, name: str, node, parent: str | None, key) -> None:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, location=location(self.path, key))
        if parent is not None and parent not in group.parents:
            group.parents.append(parent)
            self.groups[parent].children.append(name)
        if self.read.is_null(node):
            return
        if not self.read.is_mapping(node):
            self.error("E302", f"group `{name}` must be a mapping with `hosts`, `children` "
                       "or `vars`", node)
            return
        for section_key, section in self.read.pairs(node, what=f"group `{name}`"):
            section_name = self.read.key_text(section_key)
            if section_name == "hosts":
                self.hosts(group, section)
            elif section_name == "children":
                self.children(group, section)
            elif section_name == "vars":
                self.vars_of(("group", name), group.vars, section)
            else:
                close = [k for k in _GROUP_KEYS if k.startswith(section_name[:3])]
                self.error("E302", f"`{section_name}` is not a key of a group: a group "
                           "takes `hosts`, `children` and `vars`", section_key,
                           tuple(f"did you mean `{k}`?" for k in close[:1]))

    def hosts(self, group: Group, node) -> None:
        if self.read.is_null(node):
            return
        if self.read.is_scalar(node):  # `hosts: web1`, as Ansible accepts
            entries = [(node, None)]
        elif self.read.is_mapping(node):
            entries = self.read.pairs(node, what=f"the hosts of `{group.name}`")
        else:
            self.error("E302", f"the hosts of group `{group.name}` must be a mapping of "
                       "host names", node)
            return
        for key, value in entries:
            for name in self.host_names(key):
                self.host(group, name, key, value)

    def host_names(self, key) -> list[str]:
        from .ranges import RangeError, expand

        text = self.read.key_text(key)
        try:
            names = expand(text, MAX_HOSTS - len(self.order))
        except RangeError as exc:
            self.error("E303" if not exc.too_many else "E305", str(exc), key)
            return []
        good = []
        for name in names:
            try:
                good.append(check_host_name(name))
            except SettingError as exc:
                self.error("E303", str(exc), key)
        return good

    def host(self, group: Group, name: str, key, value) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.order.append(name)
            self.host_at[name] = location(self.path, key)
            self.host_vars[name] = {}
        group.direct.setdefault(name)
        if self.read.is_null(value):
            return
        if not self.read.is_mapping(value):
            self.error("E302", f"host `{name}` must be followed by a mapping of its vars (or "
                       "nothing)", value)
            return
        self.vars_of(("host", name), self.host_vars[name], value)

    def children(self, group: Group, node) -> None:
        if self.read.is_null(node):
            return
        if self.read.is_scalar(node):
            entries = [(node, None)]
        elif self.read.is_mapping(node):
            entries = self.read.pairs(node, what=f"the children of `{group.name}`")
        else:
            self.error("E302", f"the children of group `{group.name}` must be a mapping of "
                       "group names", node)
            return
        for key, value in entries:
            name = self.group_name(key)
            if name is None:
                continue
            if name == "all":
                self.error("E304", "`all` cannot be a child group: every group is in `all`",
                           key)
                continue
            self.group(name, value, group.name, key)

    def vars_of(self, owner: tuple[str, str], into: dict[str, Any], node) -> None:
        if self.read.is_null(node):
            return
        if not self.read.is_mapping(node):
            self.error("E302", f"the vars of {owner[0]} `{owner[1]}` must be a mapping", node)
            return
        for key, value_node in self.read.pairs(node, what=f"the vars of `{owner[1]}`",
                                               merge=True):
            name = self.read.key_text(key)
            into[name] = self.read.value(value_node)
            self.var_at[(owner[0], owner[1], name)] = location(self.path, value_node)

    # -- the result -------------------------------------------------------------------------

    def inventory(self) -> Inventory:
        return build_hosts(self)
