"""Run-time values: durations, values only known at run time, and how values print.

Values are plain Python: str, int, float, bool, list, dict (a JSON object or an HTTP
response), plus `Duration` and, while planning, `Unknown`.
"""

from __future__ import annotations

import json

from ..dataclass import dataclass, field
from ..syntax.lexicon import DURATION_UNITS


@dataclass(frozen=True, order=True)
class Duration:
    """A span of time in milliseconds; prints in the language's syntax (`1h30m`).

    `written` keeps a literal's text as the author wrote it (`90s`), for messages about
    constants; it takes no part in comparisons: `90s` is `1m30s`.
    """

    ms: int
    written: str | None = field(default=None, compare=False, repr=False)

    @property
    def seconds(self) -> float:
        """The duration in seconds."""
        return self.ms / 1000

    def __str__(self) -> str:
        if self.ms == 0:
            return "0s"
        rest, parts = abs(self.ms), []
        for unit, size in DURATION_UNITS:
            if rest >= size:
                parts.append(f"{rest // size}{unit}")
                rest %= size
        return ("-" if self.ms < 0 else "") + "".join(parts)


@dataclass(frozen=True)
class Unknown:
    """A value that only exists at run time (a capture, or something computed from one).

    Dry-run shows it by name, as a template: `<old_port>` for the capture itself,
    `http://127.0.0.1:<old_port>/health` for a text made with it, `<json(live.body).p95>` for
    an expression of it; `source` says in words where it comes from (messages use it), and
    the plan's legend says where each name comes from. Any operation on it gives another
    Unknown.
    """

    source: str
    expr: str = ""  # the expression it stands for, shown as `<expr>`
    template: str | None = None  # a text with placeholders in it, shown as is

    def __str__(self) -> str:
        if self.template is not None:
            return self.template
        return f"<{self.expr or self.source}>"

    @property
    def inner(self) -> str:
        """How it reads inside a larger expression's placeholder."""
        if self.template is not None:
            return json.dumps(self.template, ensure_ascii=False)
        return self.expr or self.source


def placeholder(name: str, origin: str) -> Unknown:
    """The run-time value of `name`, which `origin` gives (`captured in step x`)."""
    return Unknown(f"{name}: {origin}", expr=name)


def type_name(value) -> str:
    """The language's name for a value's type."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Duration):
        return "duration"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return "unknown"


def to_text(value) -> str:
    """How a value reads inside a string: text as is, lists and objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Duration, Unknown)):
        return str(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def to_json(value):
    """A JSON-ready form of a value (durations as text, unknowns as their description)."""
    if isinstance(value, (Duration, Unknown)):
        return str(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value
