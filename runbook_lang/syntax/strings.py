"""String literals: escapes, triple-quote dedent, and `{{ expr }}` interpolation.

Every piece keeps its position in the source, so an error inside an interpolation points at
the exact column of the culprit, even in a dedented triple-quoted string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..dataclass import dataclass
from ..lazy import compile_later

ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


@dataclass
class Piece:
    """A decoded part of a string: literal text, or the source of an interpolation."""

    is_expr: bool
    text: str
    # Absolute source offset of every character of `text`, plus one past the end.
    offsets: Sequence[int]


@dataclass
class StringError:
    """A problem inside a string literal, at absolute source offsets."""

    message: str
    start: int
    end: int


def split_string(raw: str, start: int) -> tuple[list[Piece], list[StringError]]:
    """Decode a STRING or LONG_STRING token found at source offset `start`."""
    offsets: Sequence[int]
    if raw.startswith('"""'):
        text, offsets = _dedent(raw[3:-3], start + 3)
    else:
        # A one-line string has no table: character i sits at start + 1 + i.
        text = raw[1:-1]
        offsets = range(start + 1, start + 2 + len(text))
    if "\\" not in text and "{{" not in text:
        return [Piece(False, text, [offsets[0], offsets[len(text)]])] if text else [], []
    if "\\" not in text and '"' not in text:
        return _scan_plain(text, offsets)
    return _scan(text, offsets)


def _dedent(inner: str, base: int) -> tuple[str, list[int]]:
    """Remove the first and last blank lines and the common indentation, keeping offsets."""
    lines = inner.split("\n")
    starts = []
    pos = base
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    keep = list(range(len(lines)))
    if len(keep) > 1 and not lines[keep[0]].strip():
        keep = keep[1:]
    if len(keep) > 1 and not lines[keep[-1]].strip():
        keep = keep[:-1]
    indents = [len(lines[i]) - len(lines[i].lstrip(" \t")) for i in keep if lines[i].strip()]
    indent = min(indents) if indents else 0
    text_parts: list[str] = []
    offsets: list[int] = []
    for n, i in enumerate(keep):
        line = lines[i]
        cut = min(indent, len(line) - len(line.lstrip(" \t")))
        kept = line[cut:]
        text_parts.append(kept)
        offsets.extend(range(starts[i] + cut, starts[i] + cut + len(kept)))
        if n < len(keep) - 1:
            text_parts.append("\n")
            offsets.append(starts[i] + len(line))
    offsets.append(base + len(inner))
    return "".join(text_parts), offsets


SPECIAL = compile_later(r"\\|\{\{")


def _scan(text: str, offsets) -> tuple[list[Piece], list[StringError]]:
    pieces: list[Piece] = []
    errors: list[StringError] = []
    buf: list[str] = []
    bounds: list[int] = []  # source offsets where the pending text starts and ends

    def add_text(value: str, first: int, end: int) -> None:
        buf.append(value)
        if not bounds:
            bounds.append(first)
            bounds.append(end)
        else:
            bounds[1] = end

    def flush_text() -> None:
        if buf:
            pieces.append(Piece(False, "".join(buf), list(bounds)))
            buf.clear()
            bounds.clear()

    i, n = 0, len(text)
    while i < n:
        match = SPECIAL.search(text, i)
        stop = match.start() if match else n
        if stop > i:
            add_text(text[i:stop], offsets[i], offsets[stop - 1] + 1)
        if match is None:
            break
        i = stop
        if text[i] == "\\":
            i = _escape(text, i, offsets, add_text)
            continue
        end = _find_close(text, i + 2)
        if end < 0:
            errors.append(StringError("unterminated interpolation: `{{` has no `}}`",
                                      offsets[i], offsets[i + 1] + 1))
            break
        flush_text()
        expr_text, expr_offsets = _unescape_quotes(text[i + 2:end], offsets[i + 2:end + 1])
        if not expr_text.strip():
            errors.append(StringError("empty interpolation `{{}}`", offsets[i],
                                      offsets[end + 1] + 1))
        else:
            pieces.append(Piece(True, expr_text, expr_offsets))
        i = end + 2
    flush_text()
    return pieces, errors


def _scan_plain(text: str, offsets) -> tuple[list[Piece], list[StringError]]:
    """`_scan` for text without escapes or quotes: an interpolation ends at the first `}}`."""
    pieces: list[Piece] = []
    errors: list[StringError] = []
    i, n = 0, len(text)
    while i < n:
        start = text.find("{{", i)
        stop = start if start >= 0 else n
        if stop > i:
            pieces.append(Piece(False, text[i:stop], [offsets[i], offsets[stop - 1] + 1]))
        if start < 0:
            break
        end = text.find("}}", start + 2)
        if end < 0:
            errors.append(StringError("unterminated interpolation: `{{` has no `}}`",
                                      offsets[start], offsets[start + 1] + 1))
            break
        expr_text = text[start + 2:end]
        if not expr_text.strip():
            errors.append(StringError("empty interpolation `{{}}`", offsets[start],
                                      offsets[end + 1] + 1))
        else:
            pieces.append(Piece(True, expr_text, offsets[start + 2:end + 1]))
        i = end + 2
    return pieces, errors


def _escape(text: str, i: int, offsets, add_text) -> int:
    """Decode the escape at text[i] (a backslash); return the index after it."""
    if text.startswith("{{", i + 1):
        add_text("{{", offsets[i], offsets[i + 2] + 1)
        return i + 3
    if i + 1 < len(text):
        decoded = ESCAPES.get(text[i + 1])
        if decoded is not None:
            add_text(decoded, offsets[i], offsets[i + 1] + 1)
            return i + 2
    # Any other backslash is kept as written: `pattern "^v[0-9]+\.[0-9]+$"` stays a regex.
    add_text("\\", offsets[i], offsets[i] + 1)
    return i + 1


def _find_close(text: str, i: int) -> int:
    """Index of the `}}` closing an interpolation, skipping string literals inside it.

    A literal's quotes are `\\"` in a one-line string, and may be plain `"` in a triple-quoted
    one, where `{{ upper("a}}b") }}` must not end at the first `}}`.
    """
    in_string = False
    n = len(text)
    while i < n:
        if text.startswith('\\"', i):
            in_string = not in_string
            i += 2
        elif text[i] == '"':
            in_string = not in_string
            i += 1
        elif text[i] == "\\":
            i += 2
        elif not in_string and text.startswith("}}", i):
            return i
        else:
            i += 1
    return -1


def _unescape_quotes(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """Inside an interpolation `\\"` stands for a quote; keep each character's offset."""
    if '\\"' not in text:
        return text, offsets
    out: list[str] = []
    out_offsets: list[int] = []
    i = 0
    while i < len(text):
        if text.startswith('\\"', i):
            out.append('"')
            out_offsets.append(offsets[i])
            i += 2
        else:
            out.append(text[i])
            out_offsets.append(offsets[i])
            i += 1
    out_offsets.append(offsets[len(text)])
    return "".join(out), out_offsets


OffsetMap = Callable[[int], int]
