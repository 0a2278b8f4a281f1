"""The canonical layout: two-space indentation by block depth, no trailing white space,
at most one blank line in a row, one newline at the end.

Only layout changes: the text of every line (comments included) stays as written, and the
lines inside triple-quoted strings are not touched. The result must parse to the same AST as
the input, or the file is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

INDENT = "  "
OPEN, CLOSE = "{[(", "}])"


@dataclass
class Formatted:
    """The formatted text, or why the file was left as it is."""

    text: str
    error: str | None = None


def format_source(text: str, name: str) -> Formatted:
    """Re-lay `text` out; refuse when it does not parse or when formatting would change it."""
    from .parser import ParseFailure, parse_source
    from .source import Source

    try:
        before, problems = parse_source(Source(name, text))
    except ParseFailure as failure:
        first = failure.diagnostics[0]
        where = f"{first.location.line}:{first.location.column}" if first.location else ""
        return Formatted(text, f"does not parse ({where} {first.message}); not formatted")
    if problems:
        return Formatted(text, f"{problems[0].message}; not formatted")
    result = relayout(text)
    after, _ = parse_source(Source(name, result))
    if _shape(before) != _shape(after):
        return Formatted(text, "formatting would change the meaning; left as it is")
    return Formatted(result)


def relayout(text: str) -> str:
    """Indent each line by the depth of the brackets open before it."""
    out: list[str] = []
    depth = 0
    in_long = False
    blank = 0
    for line in text.split("\n"):
        if in_long:
            out.append(line)
            depth, in_long = _scan(line, depth, True)
            continue
        stripped = line.strip()
        if not stripped:
            blank += 1
            continue
        if blank and out and not out[-1].rstrip().endswith("{"):
            out.append("")
        blank = 0
        leading_closers = len(stripped) - len(stripped.lstrip("".join(CLOSE)))
        level = max(0, depth - min(leading_closers, depth))
        out.append(INDENT * level + stripped)
        depth, in_long = _scan(stripped, depth, False)
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


def _scan(line: str, depth: int, in_long: bool) -> tuple[int, bool]:
    """Bracket depth after `line`, skipping strings and comments."""
    i, n = 0, len(line)
    while i < n:
        if in_long:
            end = line.find('"""', i)
            if end < 0:
                return depth, True
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
        if char in OPEN:
            depth += 1
        elif char in CLOSE:
            depth = max(0, depth - 1)
        i += 1
    return depth, in_long


def _shape(tree) -> object:
    """The AST without positions, for comparing meaning."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("span", "path_span")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(tree.model_dump(mode="json"))
