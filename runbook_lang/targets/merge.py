"""From groups and hosts as written to hosts as used: group depth, membership, vars merged
the way Ansible merges them, and connection settings checked (E304, E307, E308)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connection import SettingError, SshHost, check_address, check_port, check_user, parse_ssh_args
from .model import Group, Host, Inventory

if TYPE_CHECKING:
    from .inventory import _Builder

DEFAULT_PRIORITY = 1


def build_hosts(b: _Builder) -> Inventory:
    """The Inventory of a walked document; problems are added to `b.diagnostics`."""
    groups = b.groups
    _break_cycles(b)
    grouped = {h for n, g in groups.items() if n not in ("all", "ungrouped") for h in g.direct}
    if "ungrouped" not in groups:
        groups["ungrouped"] = Group("ungrouped", parents=["all"])
        groups["all"].children.append("ungrouped")
    own = groups["ungrouped"].direct
    groups["ungrouped"].direct = {h: None for h in b.order if h not in grouped or h in own}
    _depths(groups)
    position = {name: i for i, name in enumerate(b.order)}
    members = _members(groups)
    host_groups: dict[str, list[Group]] = {name: [] for name in b.order}
    for name, group in groups.items():
        group.hosts = tuple(sorted(members[name], key=position.__getitem__))
        for host in group.hosts:
            host_groups[host].append(group)
    for name in b.order:
        if name in groups:
            b.error_at("E307", f"`{name}` is both a host and a group: a step or `--limit` "
                       "naming it would be ambiguous", b.host_at[name],
                       ("rename the host or the group",))
    priorities = {name: _priority(b, group) for name, group in groups.items()}
    hosts: dict[str, Host] = {}
    for name in b.order:
        in_groups = host_groups[name]
        in_groups.sort(key=lambda g: (g.depth, priorities[g.name], g.name))
        merged: dict[str, Any] = {}
        origin: dict[str, tuple[str, str]] = {}
        for group in in_groups:
            for key, value in group.vars.items():
                merged[key] = value
                origin[key] = ("group", group.name)
        for key, value in b.host_vars[name].items():
            merged[key] = value
            origin[key] = ("host", name)
        ssh, connection = _connection(b, name, merged, origin)
        hosts[name] = Host(name, tuple(g.name for g in in_groups), merged, ssh, connection)
    return Inventory(b.path, hosts, groups)


def _break_cycles(b: _Builder) -> None:
    """Report a group that is its own descendant (E304) and drop the edge that closes it."""
    groups = b.groups
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for child in list(groups[name].children):
            if state.get(child) == 1:
                loop = " → ".join([*path[path.index(child):], name, child])
                b.error_at("E304", f"group `{child}` is its own descendant: {loop}",
                           groups[child].location, ("a group cannot contain itself",))
                groups[name].children.remove(child)
                groups[child].parents.remove(name)
            elif state.get(child) is None:
                visit(child, [*path, name])
        state[name] = 2

    for name in list(groups):
        if state.get(name) is None:
            visit(name, [])


def _depths(groups: dict[str, Group]) -> None:
    """Depth: `all` is 0, and a group is one deeper than its deepest parent (Ansible)."""
    order: list[str] = []
    done: set[str] = set()

    def topo(name: str) -> None:
        if name in done:
            return
        done.add(name)
        for parent in groups[name].parents:
            topo(parent)
        order.append(name)

    for name in groups:
        topo(name)
    for name in order:
        group = groups[name]
        group.depth = max((groups[p].depth + 1 for p in group.parents), default=0)
        if name != "all" and not group.parents:
            group.depth = 1


def _members(groups: dict[str, Group]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}

    def members(name: str) -> set[str]:
        if name not in found:
            found[name] = set()  # cycles were broken; this only guards against surprises
            hosts = set(groups[name].direct)
            for child in groups[name].children:
                hosts |= members(child)
            found[name] = hosts
        return found[name]

    for name in groups:
        members(name)
    # Every host is in `all`, whatever group it was written under.
    for name in groups:
        found["all"] |= found[name]
    return found


def _priority(b: _Builder, group: Group) -> int:
    value = group.vars.get("ansible_group_priority", DEFAULT_PRIORITY)
    if isinstance(value, bool) or not isinstance(value, int):
        b.error_at("E308", f"`ansible_group_priority` of group `{group.name}` must be an "
                   "integer", b.var_at.get(("group", group.name, "ansible_group_priority")))
        return DEFAULT_PRIORITY
    return value


def _connection(b: _Builder, name: str, merged: dict[str, Any],
                origin: dict[str, tuple[str, str]]) -> tuple[SshHost, str]:
    def where(key: str):
        kind, owner = origin.get(key, ("host", name))
        return b.var_at.get((kind, owner, key)) or b.host_at.get(name)

    def setting(*keys: str):
        for key in keys:
            if key in merged and merged[key] is not None:
                return key, merged[key]
        return keys[0], None

    fields: dict[str, Any] = {}
    checks = (("address", ("ansible_host", "ansible_ssh_host"), check_address),
              ("port", ("ansible_port", "ansible_ssh_port"), check_port),
              ("user", ("ansible_user", "ansible_ssh_user"), check_user))
    for field_name, keys, check in checks:
        key, value = setting(*keys)
        if value is None:
            continue
        try:
            fields[field_name] = check(value)
        except SettingError as exc:
            b.error_at("E308", f"host `{name}`: {exc}", where(key))
    options: list[tuple[str, str]] = []
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        text = merged.get(key)
        if text is None:
            continue
        try:
            if not isinstance(text, str):
                raise SettingError(f"`{key}` must be text")
            found, config = parse_ssh_args(text, b.base)
        except SettingError as exc:
            b.error_at("E308", f"host `{name}`: {exc}", where(key))
            continue
        options.extend(found)
        if config is not None:
            fields["config_file"] = config
    key_file = merged.get("ansible_ssh_private_key_file") or \
        merged.get("ansible_private_key_file")
    if key_file is not None:
        try:
            found, _ = parse_ssh_args(f"-i {_shell_word(str(key_file))}", b.base)
            options.extend(found)
        except SettingError as exc:
            b.error_at("E308", f"host `{name}`: {exc}", where("ansible_ssh_private_key_file"))
    connection = str(merged.get("ansible_connection") or "ssh")
    if connection not in ("ssh", "smart", "paramiko", "paramiko_ssh", "local"):
        b.error_at("E308", f"host `{name}`: `ansible_connection: {connection}` is not "
                   "supported (runbook connects with ssh, or runs `local` hosts here)",
                   where("ansible_connection"))
    try:
        ssh = SshHost(name, options=tuple(options), **fields)
    except SettingError:  # already reported above
        ssh = SshHost(name)
    return ssh, "local" if connection == "local" else "ssh"


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)
