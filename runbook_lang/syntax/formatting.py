"""The canonical layout: two-space indentation by block depth, no trailing white space,
at most one blank line in a row, one newline at the end.

A statement whose header is wrapped onto further lines (`watch "…" for 2m` then `every 10s
{` on the next line) gets one more level on those continuation lines; inside brackets the
brackets set the indentation, as before. Which lines begin an item, a statement or an
attribute is read from the parse tree, so a wrapped line is never mistaken for a new
statement, whatever word it starts with.

Only layout changes: the text of every line (comments included) stays as written, and the
lines inside triple-quoted strings are not touched. The result must parse to the same AST as
the input, or the file is left alone.
"""

from __future__ import annotations

from ..dataclass import dataclass

INDENT = "  "
OPEN, CLOSE = "{[(", "}])"


@dataclass
class Formatted:
    """The formatted text, or why the file was left as it is."""

    text: str
    error: str | None = None


def format_source(text: str, name: str) -> Formatted:
    """Re-lay `text` out; refuse when it does not parse or when formatting would change it."""
    from .parser import ParseFailure, parse_source, parse_tree
    from .source import Source

    try:
        before, problems = parse_source(Source(name, text))
    except ParseFailure as failure:
        first = failure.diagnostics[0]
        where = f"{first.location.line}:{first.location.column}" if first.location else ""
        return Formatted(text, f"does not parse ({where} {first.message}); not formatted")
    if problems:
        return Formatted(text, f"{problems[0].message}; not formatted")
    result = relayout(text, unit_starts(parse_tree(Source(name, text))))
    after, _ = parse_source(Source(name, result))
    if _shape(before) != _shape(after):
        return Formatted(text, "formatting would change the meaning; left as it is")
    return Formatted(result)


# Parse-tree rules whose children are items, statements or attributes: each child begins a
# "unit", and a line inside a block that does not begin one continues the unit before it.
_CONTAINERS = frozenset({"start", "body", "block", "header", "param_body", "a_env",
                         "http_options"})


def unit_starts(tree) -> set[int]:
    """Offsets where an item, a statement, an attribute or an `else` begins."""
    from .trees import Tree

    starts: set[int] = set()
    stack = [tree]
    while stack:
        sub = stack.pop()
        kids = [child for child in sub.children if isinstance(child, Tree)]
        stack.extend(kids)
        if sub.data in _CONTAINERS:
            starts.update(child.meta[0].start_pos for child in kids
                          if child.data != "string" and child.meta is not None)
        elif sub.data == "if_":
            starts.update(child.meta[0].start_pos for child in kids
                          if child.data in ("elif_", "else_") and child.meta is not None)
    return starts


def relayout(text: str, starts: set[int] | None = None) -> str:
    """Indent each line by the depth of the brackets open before it.

    With `starts` (see `unit_starts`), a line inside a block (or at the top) that begins no
    unit is a continuation of a wrapped header and gets one more level; brackets opened on
    it carry that level to the lines inside them.
    """
    out: list[str] = []
    # Open brackets: the character and the extra levels of the lines inside it.
    frames: list[tuple[str, int]] = [("{", 0)]
    in_long = False
    blank = 0
    offset = 0
    for line in text.split("\n"):
        line_start, offset = offset, offset + len(line) + 1
        if in_long:
            out.append(line)
            in_long = _scan(line, frames, True, 0)
            continue
        stripped = line.strip()
        if not stripped:
            blank += 1
            continue
        if blank and out and not out[-1].rstrip().endswith("{"):
            out.append("")
        blank = 0
        first = line_start + len(line) - len(line.lstrip())
        closers = len(stripped) - len(stripped.lstrip("".join(CLOSE)))
        closed_extra = None
        for _ in range(min(closers, len(frames) - 1)):
            closed_extra = frames.pop()[1]
        continuation = 0
        if closed_extra is not None:
            extra = closed_extra
        else:
            extra = frames[-1][1]
            if starts is not None and frames[-1][0] == "{" and first not in starts \
                    and stripped[0] not in "#{":
                continuation = 1
        out.append(INDENT * (len(frames) - 1 + extra + continuation) + stripped)
        in_long = _scan(stripped[closers:], frames, False, continuation)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(_drop_blank_before_closer(out)) + "\n" if out else ""


def _drop_blank_before_closer(lines: list[str]) -> list[str]:
    kept: list[str] = []
    for line in lines:
        if line.strip() and line.strip()[0] in CLOSE and kept and not kept[-1].strip():
            kept.pop()
        kept.append(line)
    return kept


def _scan(line: str, frames: list[tuple[str, int]], in_long: bool, continuation: int) -> bool:
    """Open and close the brackets of `line` (strings and comments skipped).

    Returns whether a triple-quoted string is still open at the end of the line.

    A `{` opens a block, whose lines sit one level below its statement; a `(` or `[` opened
    on a continuation line also carries the continuation's extra level.
    """
    i, n = 0, len(line)
    while i < n:
        if in_long:
            end = line.find('"""', i)
            if end < 0:
                return True
            i, in_long = end + 3, False
            continue
        char = line[i]
        if char == "#":
            break
        if line.startswith('"""', i):
            in_long = True
            i += 3
            continue
        if char == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
            continue
        if char == "{":
            frames.append((char, frames[-1][1]))
        elif char in OPEN:
            bonus = continuation if frames[-1][0] == "{" else 0
            frames.append((char, frames[-1][1] + bonus))
        elif char in CLOSE and len(frames) > 1:
            frames.pop()
        i += 1
    return in_long


def _shape(tree) -> object:
    """The AST without positions, for comparing meaning."""
    from .nodes import to_data

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k != "span" and not k.endswith("_span")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(to_data(tree))
