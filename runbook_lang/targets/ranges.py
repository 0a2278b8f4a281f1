"""Ansible's host ranges: `web[01:20].example.com`, `db-[a:f]`, `node[0:100:10]`."""

from __future__ import annotations

import re
import string

_RANGE = re.compile(r"\[([0-9A-Za-z]+):([0-9A-Za-z]+)(?::([0-9]+))?\]")


class RangeError(ValueError):
    """A range that cannot be expanded; `too_many` when it would make too many names."""

    def __init__(self, message: str, too_many: bool = False) -> None:
        super().__init__(message)
        self.too_many = too_many


def expand(pattern: str, limit: int) -> list[str]:
    """Every name a pattern stands for, in order (the pattern itself when it has no
    range); RangeError when a range is malformed or the names would exceed `limit`."""
    match = _RANGE.search(pattern)
    if match is None:
        if "[" in pattern or "]" in pattern:
            raise RangeError(f"`{pattern}`: a host range is written [START:END] or "
                             "[START:END:STEP], e.g. web[01:20]")
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end():]
    items = _items(pattern, *match.groups())
    rests = expand(tail, limit)
    names: list[str] = []
    for item in items:
        for rest in rests:
            names.append(f"{head}{item}{rest}")
            if len(names) > limit:
                raise RangeError(f"`{pattern}` stands for more hosts than an inventory may "
                                 "hold", too_many=True)
    return names


def _items(pattern: str, start: str, end: str, step_text: str | None) -> list[str]:
    step = int(step_text) if step_text else 1
    if step < 1:
        raise RangeError(f"`{pattern}`: the step of a range must be at least 1")
    if start.isdigit() and end.isdigit():
        if start.startswith("0") and len(start) > 1 and len(start) != len(end):
            raise RangeError(f"`{pattern}`: a zero-padded range needs a start and an end of "
                             "the same width")
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") else 0
        if first > last:
            raise RangeError(f"`{pattern}`: the range starts after it ends")
        if (last - first) // step > 1_000_000:
            raise RangeError(f"`{pattern}` stands for more hosts than an inventory may hold",
                             too_many=True)
        return [str(n).zfill(width) for n in range(first, last + 1, step)]
    letters = string.ascii_letters
    if len(start) == 1 and len(end) == 1 and start in letters and end in letters:
        first, last = letters.index(start), letters.index(end)
        if first > last:
            raise RangeError(f"`{pattern}`: the range starts after it ends")
        return [letters[i] for i in range(first, last + 1, step)]
    raise RangeError(f"`{pattern}`: a range goes from number to number or from letter to "
                     "letter")
