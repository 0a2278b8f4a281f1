"""Read an allowed-signers file to report its mistakes before they cost a signature.

ssh-keygen skips a line it cannot read and says so only on stderr, so a typo (an unquoted
`valid-before=20270101`, a truncated key) turns into "key not listed" at the worst moment:
when an approver signs. `read_signers` finds those lines first, for `runbook check` and
for setup. It does not decide anything: ssh-keygen alone verifies signatures.

The format (ssh-keygen(1), ALLOWED SIGNERS): one key per line,
``PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]``; `#` comments and blank lines are
ignored; PRINCIPALS is a comma-separated list of patterns (quoted if it holds spaces);
OPTIONS are `cert-authority`, `namespaces="…"`, `valid-after="…"`, `valid-before="…"`
with times written YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z].
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..dataclass import dataclass, field
from .armor import KEY_TYPE, PublicKey, parse_public_key
from .errors import SignersError

MAX_SIGNERS_BYTES = 1024 * 1024
_OPTION = re.compile(r'([A-Za-z-]+)(?:=("[^"]*"|[^,\s"]*))?(,|\s+|\Z)')
_STAMP = re.compile(r"\d{8}(\d{4}(\d{2})?)?Z?\Z")
_FLAGS = {"cert-authority"}
_VALUED = {"namespaces", "valid-after", "valid-before"}


@dataclass(frozen=True)
class SignerLine:
    """One usable line: its number, principal patterns, options and key."""

    line: int
    principals: tuple[str, ...]
    options: dict[str, str | None]
    key: PublicKey


@dataclass
class SignersFile:
    """The lines ssh-keygen will use, and a "FILE:LINE: why" for each it will skip."""

    path: Path
    entries: list[SignerLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def keys_for(self, principal: str) -> list[SignerLine]:
        """Lines naming `principal` literally (patterns are ssh-keygen's business)."""
        return [entry for entry in self.entries if principal in entry.principals]


def read_signers(path: str | os.PathLike[str]) -> SignersFile:
    """Read `path`; `SignersError` if it cannot be read at all."""
    signers = Path(path)
    try:
        if not signers.is_file():
            raise SignersError(f"the signers file {signers} "
                               + ("is not a file" if signers.exists() else "does not exist"))
        if signers.stat().st_size > MAX_SIGNERS_BYTES:
            raise SignersError(f"the signers file {signers} is over {MAX_SIGNERS_BYTES} bytes")
        text = signers.read_text(encoding="utf-8")
    except OSError as error:
        raise SignersError(f"the signers file {signers} cannot be read: {error.strerror}"
                           ) from None
    except UnicodeDecodeError:
        raise SignersError(f"the signers file {signers} is not UTF-8 text") from None
    result = SignersFile(signers)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = _parse_line(line, number)
        if isinstance(entry, str):
            result.problems.append(f"{signers}:{number}: {entry}")
        else:
            result.entries.append(entry)
    if not result.entries and not result.problems:
        result.problems.append(f"{signers}: lists no keys")
    return result


def _parse_line(line: str, number: int) -> SignerLine | str:
    """A usable line, or why ssh-keygen would skip it."""
    principals, rest = _first_word(line)
    if not principals or not rest:
        return "a line needs principals and a key"
    # ssh-keygen ignores empty patterns ("a,,b" lists a and b).
    names = tuple(name for name in principals.split(",") if name)
    if not names:
        return "a line needs principals and a key"
    key = parse_public_key(rest)
    options: dict[str, str | None] = {}
    if key is None and KEY_TYPE.match(rest.split()[0]):
        return f"the {rest.split()[0]} key is not readable (cut short or mistyped?)"
    if key is None:
        parsed = _parse_options(rest)
        if isinstance(parsed, str):
            return parsed
        options, rest = parsed
        key = parse_public_key(rest)
        if key is None:
            return "no readable public key (KEYTYPE BASE64) after the principals and options"
    return SignerLine(number, names, options, key)


def _first_word(line: str) -> tuple[str, str]:
    """The principals field (maybe quoted) and the rest of the line."""
    if line.startswith('"'):
        end = line.find('"', 1)
        if end < 0:
            return "", ""
        return line[1:end], line[end + 1:].strip()
    word, _, rest = line.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = f"{more} {rest}"
    return word, rest.strip()


def _parse_options(text: str) -> tuple[dict[str, str | None], str] | str:
    """`opt,opt="v" REST` -> options and REST, or why the options cannot be read."""
    options: dict[str, str | None] = {}
    at = 0
    while True:
        found = _OPTION.match(text, at)
        if found is None:
            return f"cannot read the options at {text[at:at + 30]!r}"
        name, value, separator = found[1].lower(), found[2], found[3]
        if name in options:
            return f"the option {name} is given twice"
        if name in _FLAGS and value is None:
            options[name] = None
        elif name in _VALUED:
            if value is None or not value.startswith('"'):
                return (f"{name} needs a quoted value ({name}=\"{value or '…'}\"); "
                        "ssh-keygen skips the line otherwise")
            value = value[1:-1]
            if name != "namespaces" and not _STAMP.match(value):
                return f"{name}=\"{value}\" is not a time (YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])"
            options[name] = value
        else:
            return f"unknown option {found[1]!r}"
        at = found.end()
        if separator != ",":
            return options, text[at:].strip()
