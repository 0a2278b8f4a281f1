"""Batches and the error budget of a step that runs on hosts (LANGUAGE.md §11).

`batch N` and `max_failures N` each take a count (an int) or a share of the step's hosts (a
percentage written as text, `"25%"`). Both are read here, by the checker for constants and
by the interpreter for what is only known when the step starts, so the two agree.
"""

from __future__ import annotations

import json
import math
import re
from typing import TypeVar

from ..dataclass import dataclass

T = TypeVar("T")

_PERCENT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*\Z")


class ShareError(ValueError):
    """A `batch` or `max_failures` value that is neither a count nor a percentage, or is
    out of range; the message says which and what is expected."""


@dataclass(frozen=True)
class Share:
    """A count of hosts, or a percentage of them."""

    count: int | None = None
    percent: float | None = None

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}%"
        return str(self.count)

    def of(self, total: int) -> float:
        """How many hosts of `total` this is (a percentage may give a fraction)."""
        if self.percent is not None:
            return total * self.percent / 100
        return float(self.count or 0)


def parse_share(value: object, what: str, *, least: int) -> Share:
    """`value` (an int, or text like `"25%"`) as a Share; ShareError says why not.

    `least` is the smallest count allowed: 1 for `batch` (a batch of no host never ends),
    0 for `max_failures`. A percentage goes up to 100; `batch` needs more than 0%.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ShareError(f"`{what}` takes a number of hosts or a percentage such as \"25%\"")
    if isinstance(value, int):
        if value < least:
            raise ShareError(f"`{what} {value}`: the number of hosts must be {least} or more")
        return Share(count=value)
    match = _PERCENT.match(value)
    if match is None:
        raise ShareError(f"`{what} {json.dumps(value)}` is neither a number of hosts nor a "
                         "percentage such as \"25%\"")
    percent = float(match.group(1))
    if percent > 100 or (least > 0 and percent == 0):
        bound = "more than 0% and at most 100%" if least > 0 else "at most 100%"
        raise ShareError(f"`{what} {json.dumps(value)}`: a percentage must be {bound}")
    return Share(percent=percent)


def batch_size(share: Share | None, total: int) -> int:
    """Hosts per batch: all of them without `batch`; a percentage rounds up, at least one."""
    if share is None or total == 0:
        return max(total, 1)
    return max(1, math.ceil(share.of(total) - 1e-9))


def split(items: list[T], size: int) -> list[list[T]]:
    """`items` in order, cut into batches of `size` (the last may be smaller)."""
    return [items[i:i + size] for i in range(0, len(items), max(size, 1))]


def exceeded(failures: int, budget: Share | None, total: int) -> bool:
    """Whether `failures` among `total` hosts exceed `max_failures` (default 0)."""
    allowed = budget.of(total) if budget is not None else 0.0
    return failures > allowed + 1e-9


def describe_budget(budget: Share | None, total: int) -> str:
    """`max_failures 1`, `max_failures 25% (1 of 5 hosts)`, for messages."""
    if budget is None:
        return "max_failures 0"
    if budget.percent is None:
        return f"max_failures {budget.count}"
    return f"max_failures {budget} ({math.floor(budget.of(total) + 1e-9)} of {total} hosts)"
