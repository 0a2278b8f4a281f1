"""Terminal output for people: rich when stdout/stderr is a terminal, plain text otherwise.

Honours NO_COLOR. Diagnostics go to stderr; data for programs goes to stdout as JSON.
"""

from __future__ import annotations

import os
import sys

from ..syntax.diagnostics import Diagnostic, render_text


def use_color(stream) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def print_diagnostics(diagnostics: list[Diagnostic], sources) -> None:
    """Render diagnostics to stderr, in colour on a terminal."""
    if not diagnostics:
        return
    color = use_color(sys.stderr)
    console = None
    if color:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
    for diagnostic in diagnostics:
        text = render_text(diagnostic, sources.line)
        if console is None:
            sys.stderr.write(text + "\n\n")
            continue
        from rich.text import Text

        rendered = Text(text + "\n")
        style = "bold red" if diagnostic.is_error else "bold yellow"
        head = text.split("\n", 1)[0]
        rendered.stylize(style, 0, len(head.split(":", 1)[0]))
        for number, line in enumerate(text.split("\n")):
            if line.lstrip().startswith("|") and "^" in line and number:
                start = sum(len(x) + 1 for x in text.split("\n")[:number])
                rendered.stylize(style, start, start + len(line))
        console.print(rendered)
