"""The words and the duration units of the language (LANGUAGE.md §2), in one place.

The parser, the transformer, the checker and the evaluator read them from here. The grammar
spells its keywords out as literals; which contextual words it uses as keywords is derived
from it (see `syntax.parser`), so a new keyword needs no second list.
"""

from __future__ import annotations

from ..lazy import compile_later

# Reserved words can never be names (params, lets, variables, tasks, steps, arguments, aliases).
RESERVED = frozenset("""runbook import param secret let task step check gate finally on_failure
run http watch expect confirm note wait set fail if else for when timeout retry env dir
description rollback in and or not contains matches true false""".split())

# The types of params, and the methods of `http`: names to the grammar, words to the checker.
TYPES = ("string", "int", "float", "bool", "duration", "list")
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head")

# Contextual words have a meaning only where the grammar expects them; elsewhere they are names.
CONTEXTUAL = frozenset("""as from file every within tolerate backoff into abort continue
approvers require message self_approval choices pattern owner tags header body targets on batch
max_failures id signers host""".split()) | frozenset(TYPES) | frozenset(HTTP_METHODS)

# Duration units, largest first: how durations are read and how they print (`1h30m`).
DURATION_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
_UNIT_MS = dict(DURATION_UNITS)
# Each unit at most once, in descending order; `m` is not the start of `ms`.
_DURATION = compile_later(
    r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?"
)


def duration_ms(text: str) -> int | None:
    """The milliseconds of a duration as the language writes it (`90s`, `1h30m`), else None."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    parts = match.groupdict()
    if not any(parts.values()):
        return None
    return sum(int(value) * _UNIT_MS[unit] for unit, value in parts.items() if value)
