"""Constants the analyser can read without running anything: literals, plain strings, lists.

Param choices and defaults, gate approvers and quorums, and the bounds of durations are
checked against these values; `show` writes one back as the author wrote it, for messages.
"""

from __future__ import annotations

import json

from ..evaluation.values import Duration, type_name
from ..syntax import nodes as n

NOTHING = object()
"""What `constant` returns for an expression that is not a constant."""

_NUMERIC = frozenset({"int", "float"})


def constant(expr):
    """The value of a constant expression (literal, plain string, list of those), or NOTHING."""
    if expr is None:
        return NOTHING
    if expr.kind == "literal":
        return expr.value
    if expr.kind == "string":
        text = expr.constant()
        return NOTHING if text is None else text
    if expr.kind == "duration":
        return Duration(expr.ms, written=expr.text)
    if expr.kind == "unary" and expr.op == "-" and expr.operand.kind == "literal":
        return -expr.operand.value
    if expr.kind == "list":
        items = [constant(i) for i in expr.items]
        return NOTHING if any(i is NOTHING for i in items) else items
    return NOTHING


def signed_constant(expr) -> float | None:
    """A constant int or duration (in ms), with its sign; None for anything computed."""
    sign = 1
    if expr.kind == "unary" and expr.op == "-":
        sign, expr = -1, expr.operand
    if expr.kind == "duration":
        return sign * expr.ms
    if expr.kind == "literal" and expr.type in ("int", "float"):
        return sign * expr.value
    return None


def pattern_text(pattern: n.String) -> str | None:
    """A `pattern`'s regex, or None when it is interpolated (patterns take no `{{ }}`)."""
    # `{{` in a regex is a literal brace pair, so the parts are text only.
    parts = []
    for part in pattern.parts:
        if part.kind != "text":
            return None
        parts.append(part.value)
    return "".join(parts)


def same_value(a, b) -> bool:
    """Equality as the language sees it: `true` is not `1`, `1` is `1.0`."""
    ta, tb = type_name(a), type_name(b)
    if ta != tb and not (ta in _NUMERIC and tb in _NUMERIC):
        return False
    return a == b


def show(value) -> str:
    """A constant as it is written in a runbook, for messages."""
    if value is NOTHING:
        # Never the sentinel's repr: a message shows what the author wrote, or says this.
        return "(a computed value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Duration):
        return value.written or str(value)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)
