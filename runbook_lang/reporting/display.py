"""Live terminal output of a run: the current step, its streamed output, statuses, summary.

Rich on a terminal (colours, a spinner with the elapsed time); plain lines when the stream
is not a terminal or NO_COLOR is set. With `--output json`, everything here goes to stderr
so that stdout carries only the JSON document.
"""

from __future__ import annotations

import sys
import threading
import time

from ..hints import TYPE_CHECKING
from .output import use_color

if TYPE_CHECKING:
    from typing import Any

SYMBOLS = {"succeeded": "✓", "failed": "✗", "tolerated": "⚠", "skipped": "↷", "rolled_back": "↺",
           "running": "▶", "paused": "⏸", "rejected": "✗", "interrupted": "■",
           "not_started": "·"}
STYLES = {"succeeded": "green", "failed": "red", "tolerated": "yellow", "skipped": "dim",
          "rolled_back": "yellow",
          "rollback_failed": "bold red", "rejected": "red", "paused": "yellow",
          "interrupted": "red", "not_started": "dim"}
INDENT = b"    "
CAPTURE_WIDTH = 60


class Display:
    """Prints what a run does as it happens."""

    def __init__(self, stream=None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        # Set by the run to its masker: every line for people passes through it.
        self.mask = _same
        self.rich = use_color(self.stream)
        self._console: Any = None
        self._status: Any = None
        self._at_line_start = True
        self._step_started = 0.0
        self._step_label = ""
        # The hosts of a batch print from several threads: one line at a time, and no
        # spinner (there is no single current step to spin for).
        self._lock = threading.RLock()
        self._guard = _Guard(self)
        self.parallel = False
        self._step_name = ""
        self._captures: list[tuple[str, str, str]] = []
        if self.rich:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)

    # ------------------------------------------------------------------ plain writing

    def line(self, text: str, style: str | None = None) -> None:
        """One line of text for the operator."""
        with self._guard:
            self._line(text, style)

    def _line(self, text: str, style: str | None) -> None:
        if self.quiet:
            return
        text = self.mask(text)
        self._end_output_line()
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(text, style=style or ""))
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def output(self, stream_name: str, chunk: bytes) -> None:
        """A chunk of a command's (masked) output, indented under its step."""
        with self._guard:
            self._output(chunk)

    def host_line(self, host: str, line: bytes) -> None:
        """One whole line of a command's (masked) output on a host, under the host's name."""
        text = line.decode("utf-8", "replace").rstrip("\r")
        with self._guard:
            if self.quiet:
                return
            self._end_output_line()
            shown = f"    {host} | {text}"
            if self._console is not None:
                from rich.text import Text

                self._console.print(Text(shown, style="dim"), soft_wrap=True)
            else:
                self.stream.write(shown + "\n")
                self.stream.flush()


    def _output(self, chunk: bytes) -> None:
        if self.quiet or not chunk:
            return
        if self._console is not None:
            self._rich_output(chunk)
            return
        buffer = getattr(self.stream, "buffer", None)
        data = chunk.replace(b"\n", b"\n" + INDENT)
        if self._at_line_start:
            data = INDENT + data
        if chunk.endswith(b"\n"):
            data = data[: -len(INDENT)]
        self._at_line_start = chunk.endswith(b"\n")
        if buffer is not None:
            self.stream.flush()
            buffer.write(data)
            buffer.flush()
        else:
            self.stream.write(data.decode("utf-8", "replace"))

    def _rich_output(self, chunk: bytes) -> None:
        from rich.text import Text

        text = chunk.decode("utf-8", "replace")
        lines = text.split("\n")
        for index, piece in enumerate(lines):
            if index == len(lines) - 1 and not piece:
                break
            self._console.print(Text("    " + piece, style="dim"), soft_wrap=True)

    def _end_output_line(self) -> None:
        if not self._at_line_start:
            if self._console is None:
                self.stream.write("\n")
            self._at_line_start = True

    # ------------------------------------------------------------------ steps

    def step_started(self, number: str, name: str, title: str, of: str = "") -> None:
        """A step begins: its header line and, on a terminal, a spinner. `of` ("2/3") says
        which instance of a `for` step this is."""
        self._step_started = time.monotonic()
        label = f"{name} [{of}]" if of else name
        self._step_name = self.mask(name)
        self._step_label = self.mask(f"{label}: {title}")
        self.line(f"▶ [{number}] {label}: {title}", "bold cyan")

    def captured(self, name: str, value: str, step: str | None = None,
                 host: str | None = None) -> None:
        """A value a step captured (`into`), by name: shown now and again in the summary.
        `step` and `host` name the instance: the hosts of a batch capture at once, so the
        step that started last is not necessarily the one that captured."""
        text = self.mask(value)
        lines = text.splitlines() or [""]
        shown = lines[0]
        if len(lines) > 1 or len(shown) > CAPTURE_WIDTH:
            # Cut for the terminal only, and said so: the transcript keeps the whole value.
            shown = shown[:CAPTURE_WIDTH] + f"… ({len(text)} characters, {len(lines)} lines)"
        with self._lock:
            self._captures.append((self.mask(step) if step else self._step_name, name, shown))
        where = f"    {host} | " if host else "    "
        self.line(f"{where}↳ {name} = {shown}", "dim")
        self._start_spinner()

    def _start_spinner(self) -> None:
        if self._console is None or self.quiet or self.parallel:
            return
        self._status = self._console.status(_Elapsed(self._step_label, self._step_started),
                                            spinner="dots")
        self._status.start()

    def countdown(self, text: str | None) -> None:
        """On a terminal, show `text` (the time left of a `wait`) beside the spinner; None
        puts the step's label back. Plain output prints the wait once and nothing more."""
        if self._status is None:
            return
        with self._guard:
            label = self._step_label if text is None else f"{self._step_label} · {text}"
            started = self._step_started
            self._status.update(_Elapsed(label, started))

    def stop_spinner(self) -> None:
        """Stop the spinner (before a prompt or at the end of a step)."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def step_finished(self, name: str, status: str, duration_ms: int, reason: str = "") -> None:
        """A step ends: its status, duration and, when it did not succeed, why."""
        self.stop_spinner()
        symbol = SYMBOLS.get(status, "•")
        detail = f" — {reason}" if reason else ""
        self.line(f"{symbol} {name} {status} ({format_ms(duration_ms)}){detail}",
                  STYLES.get(status))

    def summary(self, rows: list[tuple[str, str, int]], status: str, exit_code: int,
                duration_ms: int) -> None:
        """The end-of-run table: each step's status and duration (an instance of a `for`
        step as `NAME[item] [i/n]`), the values captured by name, then the run's status."""
        if self.quiet:
            return
        self.stop_spinner()
        self.line("")
        if self._console is not None and rows:
            from rich.table import Table

            table = Table(title="Summary", title_justify="left", show_edge=False)
            table.add_column("step")
            table.add_column("status")
            table.add_column("duration", justify="right")
            for name, step_status, ms in rows:
                table.add_row(self.mask(name), f"[{STYLES.get(step_status, '')}]{step_status}[/]"
                              if STYLES.get(step_status) else step_status, format_ms(ms))
            self._console.print(table)
        elif rows:
            # Every column as wide as its widest cell: `rollback_failed` keeps the table.
            width = max(len(name) for name, _, _ in rows)
            status_width = max(len(step_status) for _, step_status, _ in rows)
            self.line("Summary:")
            for name, step_status, ms in rows:
                self.line(f"  {name.ljust(width)}  {step_status.ljust(status_width)}  "
                          f"{format_ms(ms)}")
        if self._captures:
            self.line("Captured:")
            width = max(len(f"{step}: {name}") for step, name, _ in self._captures)
            for step, name, shown in self._captures:
                self.line(f"  {f'{step}: {name}'.ljust(width)} = {shown}")
        self.line(f"run {status} (exit {exit_code}) in {format_ms(duration_ms)}",
                  STYLES.get(status, "bold green" if status == "succeeded" else None))


class _Guard:
    """`with display._guard:` one thing printed at a time (the hosts of a batch print from
    several threads). A closed terminal or pipe (`runbook run … | head`) must not stop the
    run half-way: the transcript is the record, so the display just goes quiet."""

    __slots__ = ("display",)

    def __init__(self, display: Display) -> None:
        self.display = display

    def __enter__(self) -> None:
        self.display._lock.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: object, trace: object) -> bool:
        self.display._lock.release()
        if kind is not None and issubclass(kind, (BrokenPipeError, OSError, ValueError)):
            self.display.quiet = True
            return True
        return False


class _Elapsed:
    """A spinner label that shows the time since the step started, redrawn by rich."""

    def __init__(self, label: str, started: float) -> None:
        self.label, self.started = label, started

    def __rich__(self):
        from rich.text import Text

        text = Text(self.label, style="cyan")
        text.append(f" {time.monotonic() - self.started:.1f}s", style="dim")
        return text


def _same(text: str) -> str:
    return text


def format_ms(ms: int) -> str:
    """`0.12s`, `3.4s`, `2m05s`."""
    if ms < 60_000:
        return f"{ms / 1000:.2f}s" if ms < 10_000 else f"{ms / 1000:.1f}s"
    minutes, rest = divmod(ms // 1000, 60)
    return f"{minutes}m{rest:02d}s"
