"""How to reach one host over SSH: names and settings checked before they reach `ssh`.

A host name, an address, a user or an option value only ever becomes one element of the
`ssh` argument vector (never text for a shell), and each is checked here first, so that none
can turn into an ssh option (`-oProxyCommand=…`), a second destination, or a line of ssh's
configuration. The inventory (`inventory.py`) reports these checks as diagnostics with the
place in the file; a host list given without an inventory goes through the same checks.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from ..dataclass import dataclass

# A host name (an inventory name or an ssh_config alias): letters, digits and `._-`, plus
# `:` for IPv6 addresses. No `@` (ssh would read a user), no `%` (ssh expands tokens), no
# `/` (ssh:// URIs), no white space or control characters.
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}\Z")
# An address (`ansible_host`): the same, and `[`/`]` around an IPv6 address.
_ADDRESS = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}|\[[0-9A-Fa-f:.]{2,60}\])\Z")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9]{1,63}\Z")

# Options runbook sets itself, for every connection: they keep one master per host, batch
# mode and the wrapper's stdin working.
_MANAGED = {
    "batchmode", "controlmaster", "controlpath", "controlpersist", "remotecommand",
    "requesttty", "sessiontype", "stdinnull", "forkafterauthentication", "escapechar",
}


class SettingError(ValueError):
    """A host name, address, user, port or ssh argument that runbook will not pass on."""


@dataclass(frozen=True)
class SshHost:
    """One host as `ssh` should reach it.

    `name` is what ssh is given as the destination (an inventory name or an ssh_config
    alias); `address`, `port` and `user` override what the ssh configuration says
    (`ansible_host`, `ansible_port`, `ansible_user`); `options` are extra `-o NAME=VALUE`
    settings and `config_file` a `-F` file, both from `ansible_ssh_common_args`.
    """

    name: str
    address: str | None = None
    port: int | None = None
    user: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    config_file: str | None = None

    def __post_init__(self) -> None:
        check_host_name(self.name)
        if self.address is not None:
            check_address(self.address)
        if self.port is not None:
            check_port(self.port)
        if self.user is not None:
            check_user(self.user)
        for name, value in self.options:
            check_option(name, value)


def check_host_name(name: object) -> str:
    """`name` if it can be an ssh destination; SettingError says why not."""
    if not isinstance(name, str) or not name:
        raise SettingError("a host name must be non-empty text")
    if name.startswith("-"):
        raise SettingError(f"host name {_show(name)} starts with `-`: ssh would read it as an "
                           "option")
    if not _HOST.match(name):
        raise SettingError(f"host name {_show(name)} has characters ssh would not take as a "
                           "plain name (use letters, digits, `.`, `-`, `_` and `:`)")
    return name


def check_address(address: object) -> str:
    """An `ansible_host` value: a host name or an IP address."""
    if not isinstance(address, str) or not address:
        raise SettingError("`ansible_host` must be a host name or an IP address")
    if address.startswith("-") or not _ADDRESS.match(address):
        raise SettingError(f"`ansible_host` {_show(address)} is not a host name or an IP "
                           "address")
    return address


def check_port(port: object) -> int:
    """An `ansible_port` value: an integer from 1 to 65535 (digits in text are accepted)."""
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SettingError(f"`ansible_port` must be a port number from 1 to 65535, not "
                           f"{_show(port)}")
    return port


def check_user(user: object) -> str:
    """An `ansible_user` value: a login name."""
    if not isinstance(user, str) or user.startswith("-") or not _USER.match(user):
        raise SettingError(f"`ansible_user` {_show(user)} is not a login name")
    return user


def check_option(name: str, value: str) -> None:
    """An extra `-o NAME=VALUE`: a known form, and nothing that weakens host key checking or
    fights what runbook sets itself."""
    if not _OPTION.match(name):
        raise SettingError(f"{_show(name)} is not an ssh option name")
    if any(c in value for c in "\0\r\n"):
        raise SettingError(f"the value of ssh option {name} holds a line break")
    key = name.lower()
    if key in _MANAGED:
        raise SettingError(f"ssh option {name} is set by runbook itself and cannot be changed")
    if key == "stricthostkeychecking" and value.strip().lower() in ("no", "off"):
        raise SettingError("StrictHostKeyChecking=no would accept any host key: runbook "
                           "never turns host key checking off")
    if key in ("userknownhostsfile", "globalknownhostsfile") and any(
            part in ("/dev/null", "none") for part in value.split()):
        raise SettingError(f"{name}={value} would forget every host key: runbook never turns "
                           "host key checking off")


def parse_ssh_args(text: str, base: Path | None = None) -> tuple[tuple[tuple[str, str], ...],
                                                                 str | None]:
    """`ansible_ssh_common_args` (or `_extra_args`): (options, config file).

    Accepted forms: `-F FILE`, `-o NAME=VALUE` (also `-oNAME=VALUE` and `-o "NAME VALUE"`),
    `-J JUMP` (ProxyJump) and `-i FILE` (IdentityFile). Relative files are taken from
    `base` (the inventory's directory). Anything else raises SettingError.
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise SettingError(f"cannot split the ssh arguments: {exc}") from None
    options: list[tuple[str, str]] = []
    config: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        flag, attached = word[:2], word[2:]
        if flag not in ("-F", "-o", "-J", "-i") or not word.startswith("-"):
            raise SettingError(f"ssh argument {_show(word)} is not supported here (use -F, "
                               "-o, -J or -i)")
        if attached:
            value = attached
        elif i + 1 < len(words):
            i += 1
            value = words[i]
        else:
            raise SettingError(f"ssh argument {word} needs a value")
        i += 1
        if flag == "-F":
            config = _path(value, base)
        elif flag == "-J":
            options.append(("ProxyJump", value))
        elif flag == "-i":
            key = _path(value, base)
            if any(c.isspace() or c == '"' for c in key):
                raise SettingError(f"key file {_show(key)}: a name with spaces or quotes "
                                   "cannot be passed to ssh as an option")
            options.append(("IdentityFile", key))
        else:
            name, value = _split_option(value)
            options.append((name, value))
    for name, value in options:
        check_option(name, value)
    return tuple(options), config


def _split_option(text: str) -> tuple[str, str]:
    match = re.match(r"\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)\Z", text, re.S)
    if not match or not match.group(2).strip():
        raise SettingError(f"-o {_show(text)} is not NAME=VALUE")
    return match.group(1), match.group(2).strip()


def _path(value: str, base: Path | None) -> str:
    if any(c in value for c in "\0\r\n"):
        raise SettingError("a file name holds a line break")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return str(path)


def _show(value: object) -> str:
    """A value for a message: quoted, control characters escaped, cut short."""
    text = repr(value) if not isinstance(value, str) else repr(value)[1:-1]
    if len(text) > 60:
        text = text[:57] + "…"
    return f"`{text}`"
