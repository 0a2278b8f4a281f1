"""The exact bytes that get signed: canonical statements of an approval and of a head seal.

A statement is one JSON object, keys sorted, no white space between tokens, UTF-8, no
trailing newline; strings escaped by JSON's rules (``"``, ``\\`` and control characters
such as a newline), so no text placed in a field (a reason holding quotes, braces, commas or
newlines) can end that field or start another. Decoding accepts exactly the bytes encoding
produces: the same keys, the same types, and the same spelling (no extra spaces, no
duplicate keys, no needless escapes), so each statement has one byte form and each byte
form one statement.

Approval (namespace ``runbook-approval``)::

    {"approver":"alice","decision":"approve","format":"runbook-approval",
     "gate":"approve_prod","reason":"change 4711 reviewed","run_id":"20261129T161342Z-3f9a1c",
     "runbook_sha256":"<64 hex>","time":"2026-11-29T16:20:05.123Z","version":1}

Head seal (namespace ``runbook-head``)::

    {"format":"runbook-head","hash":"<64 hex>","run_id":"20261129T161342Z-3f9a1c",
     "seq":41,"signer":"alice","time":"2026-11-29T16:31:40.007Z","version":1}

(shown wrapped; the real bytes are one line.) The namespace keeps a signature made for one
purpose from being accepted for the other, and for git commits or anything else signed
with the same key; the `format` tag makes a statement say what it is on its own.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Self

from ..dataclass import asdict, dataclass, fields
from .errors import StatementError

APPROVAL_NAMESPACE = "runbook-approval"
HEAD_NAMESPACE = "runbook-head"
APPROVAL_FORMAT = "runbook-approval"
HEAD_FORMAT = "runbook-head"
VERSION = 1
DECISIONS = ("approve", "reject")
MAX_REASON = 4096
MAX_STATEMENT = 64 * 1024
# Clocks of the signer's and the checker's machines may differ this much.
CLOCK_SKEW = timedelta(minutes=5)

Decision = Literal["approve", "reject"]
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


def utc_now() -> str:
    """The current time as statements write it: UTC, RFC 3339, milliseconds."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    """A time-zone-aware datetime as statements write it."""
    if moment.tzinfo is None:
        raise StatementError("a statement's time must carry its time zone")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """The datetime of a statement's time field; `StatementError` if it is not one."""
    if not isinstance(text, str) or not _TIME.match(text):
        raise StatementError(f"the time {text!r} is not UTC RFC 3339 with milliseconds "
                             "(2026-11-29T16:20:05.123Z)")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise StatementError(f"the time {text!r} is not a real date and time") from None


def _text(field: str, value: Any, *, limit: int = 256, empty: bool = False,
          controls: bool = False) -> None:
    """A text field: a str, within `limit`, encodable, without control characters."""
    if not isinstance(value, str):
        raise StatementError(f"the {field} must be text, not {type(value).__name__}")
    if not value and not empty:
        raise StatementError(f"the {field} is empty")
    if len(value) > limit:
        raise StatementError(f"the {field} is longer than {limit} characters")
    if not controls and any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
        raise StatementError(f"the {field} {value!r} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StatementError(f"the {field} is not valid Unicode text") from None


def _digest(field: str, value: Any) -> None:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise StatementError(f"the {field} must be 64 lower-case hex digits, not {value!r}")


def _encode(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _decode(data: bytes, tag: str, keys: frozenset[str]) -> dict[str, Any]:
    """The fields of a statement of format `tag`, checked for shape; not yet for values."""
    if not isinstance(data, bytes | bytearray):
        raise StatementError("a statement is bytes")
    if len(data) > MAX_STATEMENT:
        raise StatementError(f"the statement is {len(data)} bytes long, over the "
                             f"{MAX_STATEMENT}-byte limit")
    try:
        fields = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise StatementError("the statement is not JSON text") from None
    if not isinstance(fields, dict):
        raise StatementError("the statement is not a JSON object")
    if fields.get("format") != tag:
        raise StatementError(f"the statement is not a {tag} statement (format "
                             f"{fields.get('format')!r})")
    version = fields.get("version")
    if type(version) is not int or version != VERSION:
        raise StatementError(f"{tag} statement version {version!r} is not supported "
                             f"(this runbook reads version {VERSION})")
    if set(fields) != keys:
        missing, extra = sorted(keys - set(fields)), sorted(set(fields) - keys)
        raise StatementError("the statement's fields are wrong"
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; unexpected: {', '.join(extra)}" if extra else ""))
    return fields


class _Statement:
    """What every signed statement shares: one canonical byte form, read back only as that."""

    FORMAT: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]  # each statement is a dataclass

    def to_bytes(self) -> bytes:
        """The canonical bytes to sign."""
        return _encode({"format": self.FORMAT, "version": VERSION, **asdict(self)})

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Read a statement back; `StatementError` unless `data` is one, canonical."""
        names = [f.name for f in fields(cls)]
        found = _decode(data, cls.FORMAT, frozenset(("format", "version", *names)))
        return _canonical(cls(**{k: found[k] for k in names}), data)


@dataclass(frozen=True)
class ApprovalStatement(_Statement):
    """What an approver signs: this decision, on this gate, of this run of this runbook."""

    run_id: str
    runbook_sha256: str
    gate: str
    decision: Decision
    reason: str
    time: str
    approver: str

    FORMAT: ClassVar[str] = APPROVAL_FORMAT
    NAMESPACE: ClassVar[str] = APPROVAL_NAMESPACE

    def __post_init__(self) -> None:
        _text("run id", self.run_id)
        _digest("runbook SHA-256", self.runbook_sha256)
        _text("gate", self.gate)
        if self.decision not in DECISIONS:
            raise StatementError(f"the decision must be approve or reject, not "
                                 f"{self.decision!r}")
        _text("reason", self.reason, limit=MAX_REASON, empty=True, controls=True)
        parse_time(self.time)
        _text("approver", self.approver)



@dataclass(frozen=True)
class HeadStatement(_Statement):
    """What a head seal signs: this run's transcript ends at record `seq` with `hash`."""

    run_id: str
    seq: int
    hash: str
    time: str
    signer: str

    FORMAT: ClassVar[str] = HEAD_FORMAT
    NAMESPACE: ClassVar[str] = HEAD_NAMESPACE

    def __post_init__(self) -> None:
        _text("run id", self.run_id)
        if type(self.seq) is not int or self.seq < 0:
            raise StatementError(f"the seq must be a whole number >= 0, not {self.seq!r}")
        _digest("record hash", self.hash)
        parse_time(self.time)
        _text("signer", self.signer)



def _canonical(statement: Any, data: bytes) -> Any:
    # Any other spelling of the same fields (spaces, key order, escapes, a repeated key)
    # would give a second byte form for one statement: refuse it.
    if statement.to_bytes() != bytes(data):
        raise StatementError("the statement is not in canonical form")
    return statement




@dataclass(frozen=True)
class Signed:
    """A statement as text (the UTF-8 of the signed bytes) and its armored signature."""

    statement: str
    signature: str

    def data(self) -> bytes:
        """The signed bytes."""
        return self.statement.encode("utf-8")

    def to_json(self) -> str:
        """One JSON object (for a seal file or a record's fields)."""
        return json.dumps({"statement": self.statement, "signature": self.signature},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Signed:
        """Read `to_json` back; `StatementError` if the text is not such an object."""
        try:
            fields = json.loads(text)
        except (ValueError, RecursionError):
            raise StatementError("the signed statement is not JSON text") from None
        if not isinstance(fields, dict) or not all(
                isinstance(fields.get(k), str) for k in ("statement", "signature")):
            raise StatementError("the signed statement needs text fields statement and "
                                 "signature")
        return cls(fields["statement"], fields["signature"])
