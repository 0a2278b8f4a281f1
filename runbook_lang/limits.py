"""The bounds on what the tool reads and builds (LANGUAGE.md §6.7), in one place.

A hostile or broken input (an endless file, a huge literal, a YAML alias bomb, a number of
thousands of digits) ends in a clear error naming the limit, never in a crash or a machine
out of memory. docs/decisions.md gives the reasons for each figure.

Like `errors`, this module imports nothing of ours: every stage reads its limits here.
"""

from __future__ import annotations

KiB = 1 << 10
MiB = 1 << 20

# Files, read through `read_bounded`: never more than the limit (plus one byte) is read.
MAX_RUNBOOK_BYTES = 4 * MiB  # a runbook file or a module it imports
MAX_PARAMS_BYTES = 1 * MiB  # a `--params` YAML file
MAX_SECRET_BYTES = 64 * KiB  # a `secret … from file`

# Literals in a runbook.
MAX_STRING_CHARS = 1 * MiB  # one string literal, in characters as written
MAX_NUMBER_CHARS = 100  # a number or duration literal as written (`1h30m`)

# Ints are 64-bit, as in JSON's common readers, PostgreSQL's bigint and most tools an
# operator feeds: a literal, a param, a conversion or a sum outside this range is an error.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1

# Values a runbook builds: `+` refuses to join strings or lists beyond these (a chain of
# lets that doubles a string would otherwise fill the memory).
MAX_VALUE_CHARS = 64 * MiB
MAX_LIST_ITEMS = 1_000_000

# YAML params: values built per document (aliases count every time they are expanded).
MAX_PARAMS_VALUES = 100_000


def size_text(limit: int) -> str:
    """A limit in bytes as people write it: `4 MiB`, `64 KiB`."""
    if limit % MiB == 0:
        return f"{limit // MiB} MiB"
    if limit % KiB == 0:
        return f"{limit // KiB} KiB"
    return f"{limit} bytes"


class TooLarge(Exception):
    """A file is larger than the limit for its kind; the message names the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {size_text(limit)}")
        self.limit = limit


def read_bounded(path, limit: int) -> bytes:
    """The bytes of a file, reading at most `limit` + 1 of them: TooLarge beyond `limit`.

    A device or a pipe (`/dev/zero`) is read the same way, so it ends in TooLarge instead of
    filling the memory. Raises OSError as `open` and `read` do.
    """
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(limit)
    return data


def int_in_range(value: int) -> bool:
    """Whether an int fits the language's 64-bit ints."""
    return INT_MIN <= value <= INT_MAX
