"""Which hosts: what a step names (`on "web"`, `on ["web1", "db"]`) and what `--limit`
selects, with Ansible's pattern forms. Results are always in inventory order, each host once.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from .model import Host, Inventory, TargetError


def resolve(inventory: Inventory, names: str | Sequence[str]) -> list[Host]:
    """The hosts a step names: each name is a host or a group (`all` included)."""
    wanted: set[str] = set()
    for name in [names] if isinstance(names, str) else list(names):
        if not isinstance(name, str) or not name:
            raise TargetError("a host or group name must be non-empty text")
        if name in inventory.hosts:
            wanted.add(name)
        elif name in inventory.groups:
            wanted.update(inventory.groups[name].hosts)
        else:
            raise TargetError(_unknown(inventory, name, "host or group"))
    return [host for name, host in inventory.hosts.items() if name in wanted]


def select(inventory: Inventory, pattern: str) -> set[str]:
    """The names of the hosts a `--limit` pattern selects.

    Forms (Ansible's): `all` or `*`; a host or a group; globs `web*`, `db?`; several
    patterns separated by `,` (or `:`); `!PATTERN` excludes and `&PATTERN` intersects.
    Plain patterns are joined first, then `&` patterns narrow, then `!` patterns remove;
    with only `!` and `&` patterns, the start is `all`. A name that matches nothing is an
    error (a mistyped exclusion would otherwise exclude nothing); an empty result too.
    """
    terms = split_pattern(pattern)
    if not terms:
        raise TargetError("--limit needs a pattern: a host, a group, or a list of them")
    plain = [t for t in terms if t[0] not in "!&"]
    narrow = [t[1:] for t in terms if t[0] == "&"]
    remove = [t[1:] for t in terms if t[0] == "!"]
    chosen: set[str] = set()
    for term in plain or ["all"]:
        chosen |= _match(inventory, term)
    for term in narrow:
        chosen &= _match(inventory, term)
    for term in remove:
        chosen -= _match(inventory, term)
    if not chosen:
        raise TargetError(f"--limit {pattern!r} selects no host")
    return chosen


def limit(hosts: list[Host], selected: set[str] | None) -> list[Host]:
    """`hosts` narrowed to a `--limit` selection (None: no limit)."""
    if selected is None:
        return hosts
    return [host for host in hosts if host.name in selected]


def split_pattern(pattern: str) -> list[str]:
    """`web1,web2` and `web1:web2` -> terms; an IPv6 address stays whole."""
    if "," in pattern:
        parts = pattern.split(",")
    elif pattern.count(":") >= 2 and not any(c in pattern for c in "!&*?"):
        parts = [pattern]  # an IPv6 address, not a list
    else:
        parts = pattern.split(":")
    return [p.strip() for p in parts if p.strip()]


def _match(inventory: Inventory, term: str) -> set[str]:
    if not term:
        raise TargetError("--limit: `!` and `&` must be followed by a pattern")
    if term.startswith("~"):
        raise TargetError(f"--limit {term!r}: regular expressions are not supported; use "
                          "`*` and `?` globs")
    if "[" in term:
        raise TargetError(f"--limit {term!r}: subscripts like group[0] are not supported; "
                          "name the hosts")
    if term in ("all", "*"):
        return set(inventory.hosts)
    if term in inventory.hosts:
        return {term}
    if term in inventory.groups:
        return set(inventory.groups[term].hosts)
    if "*" in term or "?" in term:
        found = {h for h in inventory.hosts if fnmatch.fnmatchcase(h, term)}
        for name, group in inventory.groups.items():
            if fnmatch.fnmatchcase(name, term):
                found.update(group.hosts)
        return found
    raise TargetError(f"--limit: {_unknown(inventory, term, 'host or group')}")


def _unknown(inventory: Inventory, name: str, what: str) -> str:
    where = f"inventory {inventory.path}" if inventory.path else "the host list"
    message = f"no {what} named `{name}` in {where}"
    import difflib  # only for a mistake: not loaded by every run

    close = difflib.get_close_matches(name, [*inventory.hosts, *inventory.groups], n=1)
    return message + (f" (did you mean `{close[0]}`?)" if close else "")
