"""Diagnostics are values; this module is the one place that turns them into text.

Every stage (parser, transformer, analyser, params) returns `Diagnostic`s; the CLI renders
them here, for people (`error[E201]: …` with the source line and a caret) or as JSON.
"""

from __future__ import annotations

from ..dataclass import asdict, dataclass, field
from ..hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Literal

    Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Location:
    """A place in a file: 1-based line and column, and the end column on the same line."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Diagnostic:
    """One finding: severity, a stable code, a message naming the culprit, where, and hints."""

    severity: Severity
    code: str
    message: str
    location: Location | None = None
    hints: tuple[str, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        """True for errors (exit code 2), false for warnings."""
        return self.severity == "error"

    def to_json(self) -> dict:
        """The diagnostic as a JSON-ready dict."""
        data = asdict(self)
        data["hints"] = list(self.hints)
        return data


def at(source, start: int, end: int) -> Location:
    """A Location for source offsets [start, end) of a `Source`."""
    line, column = source.position(start)
    end_line, end_column = source.position(max(end, start + 1))
    return Location(source.path, line, column, end_line, end_column)


def at_span(path: str, span) -> Location:
    """A Location from a node's Span."""
    return Location(path, span.line, span.column, span.end_line, span.end_column)


# Control characters of a source line are shown as their Unicode pictures (`␛` for ESC), one
# column each: the caret stays aligned and the terminal never receives an escape sequence.
_VISIBLE = {c: 0x2400 + c for c in range(32)} | {0x7F: 0x2421} | {c: 0xFFFD for c in
                                                                     range(0x80, 0xA0)}


def render_text(diagnostic: Diagnostic, lines_of) -> str:
    """Render in the style of just/rustc: header, location, source line, caret.

    `lines_of(path, line)` returns the text of a source line (or "" when unknown).
    """
    out = [f"{diagnostic.severity}[{diagnostic.code}]: {diagnostic.message}"]
    loc = diagnostic.location
    if loc is not None:
        out.append(f" --> {loc.path}:{loc.line}:{loc.column}")
        text = lines_of(loc.path, loc.line)
        if text or loc.line:
            number = str(loc.line)
            pad = " " * len(number)
            shown = text.expandtabs(1).translate(_VISIBLE)
            if loc.end_line == loc.line:
                width = max(1, loc.end_column - loc.column)
            else:
                width = max(1, len(text) - loc.column + 1)
            if len(shown) > 200:
                # A very long line (a 2 MB string): show a window around the caret, with `…`
                # where the line goes on.
                start = max(0, loc.column - 60)
                before = "…" if start else ""
                after = "…" if start + 160 < len(shown) else ""
                shown = before + shown[start:start + 160] + after
                column = loc.column - start + len(before)
                width = min(width, 160 - (loc.column - start) + 1)
            else:
                column = loc.column
            out.append(f"{pad} |")
            out.append(f"{number} | {shown}")
            out.append(f"{pad} | {' ' * (column - 1)}{'^' * max(1, width)}")
    for hint in diagnostic.hints:
        out.append(f"  = help: {hint}")
    return "\n".join(out)


def summary_line(diagnostics: list[Diagnostic]) -> str:
    """`2 errors, 1 warning` (empty when there are none)."""
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts)
