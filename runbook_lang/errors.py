"""Errors that cross stages, and the exit codes of LANGUAGE.md §8.

This module imports nothing of ours, so any stage can raise these and the command line can
turn them into exit codes without an import circle.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_REJECTED = 4
EXIT_ROLLBACK_FAILED = 5
EXIT_INTERRUPTED = 130

# A run's final status and its exit code.
EXIT_CODES = {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "rolled_back": EXIT_FAILED,
              "rollback_failed": EXIT_ROLLBACK_FAILED, "rejected": EXIT_REJECTED,
              "paused": EXIT_PAUSED, "interrupted": EXIT_INTERRUPTED}


class RunbookError(Exception):
    """Base of the errors the tool reports to people (never with a traceback)."""


class UsageError(RunbookError):
    """Bad command-line input: reported with exit code 2."""


class Refused(RunbookError):
    """A command cannot start (a run, a resume, an approval); nothing was changed (exit 2)."""


class EvalError(RunbookError):
    """An expression cannot be evaluated (a type error, a bad conversion, an unset name).

    The values a message shows are kept apart from its text, because a value may be (or
    hold) a secret: `EvalError("number(): {0} is not a number", text)`. `str(error)` shows
    each value quoted and cut to `width` characters; `render(mask)` applies `mask` to each
    value's text first, so that a secret is hidden even where quoting would escape it or
    the cut would leave only part of it (LANGUAGE.md §6.2). The values are the texts as the
    language writes them (`to_text`); `quote=False` shows them as they are, unquoted.
    """

    def __init__(self, message: str, *values: str, width: int | None = 80,
                 quote: bool = True) -> None:
        self.message = message
        self.values = values
        self.width = width
        self.quote = quote
        super().__init__(self.render())

    def render(self, mask=None) -> str:
        """The message with each value masked by `mask` (a function of text), then shown."""
        shown = []
        for value in self.values:
            value = mask(value) if mask is not None else value
            if self.width is not None and len(value) > self.width:
                value = value[:self.width]
            shown.append(repr(value) if self.quote else value)
        # One pass over the message: a value's own text is never read as a `{N}`.
        pieces = self.message.split("{")
        out = [pieces[0]]
        for piece in pieces[1:]:
            index, brace, rest = piece.partition("}")
            if brace and index.isdigit() and int(index) < len(shown):
                out.append(shown[int(index)] + rest)
            else:
                out.append("{" + piece)
        return "".join(out)

    def renamed(self, old: str, new: str) -> EvalError:
        """The same error with `old` in its text replaced once by `new` (the values kept)."""
        return EvalError(self.message.replace(old, new, 1), *self.values, width=self.width,
                         quote=self.quote)


class StepFailed(RunbookError):
    """The current step failed; `reason` says why in one line."""

    def __init__(self, reason: str, details: dict | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}


class Interrupted(RunbookError):
    """Ctrl-C or SIGTERM reached the run: stop now, record `interrupted`."""


class ParseFailure(RunbookError):
    """A file or an interpolation that cannot be parsed into an AST.

    `diagnostics` holds the `syntax.diagnostics.Diagnostic`s that say why (this module
    imports nothing of ours, nor `typing`: `runbook --version` imports it).
    """

    def __init__(self, diagnostics: list) -> None:
        super().__init__(diagnostics[0].message if diagnostics else "parse failed")
        self.diagnostics = diagnostics


class LoadError(RunbookError):
    """A runbook file itself cannot be read: missing, a directory, not UTF-8 text."""


class ParamError(RunbookError):
    """A param value from the command line or a params file is unusable (exit 2)."""


class StoreError(RunbookError):
    """The store cannot be reached or cannot do what was asked; the message says why."""


class RecordError(RunbookError):
    """The run's record cannot be written (disk full, folder gone or read-only): the run
    stops at once, since nothing may run unrecorded."""


class LockBusy(RunbookError):
    """Another live run holds the lock, or a killed run's process group is still alive;
    `holder` says who."""

    def __init__(self, holder: dict, message: str | None = None) -> None:
        super().__init__(message or "locked")
        self.holder = holder
        self.message = message

    def describe(self) -> str:
        """One line naming the holder."""
        if self.message:
            return self.message
        h = self.holder
        return (f"another run holds the lock: run {h.get('run_id', '?')} by "
                f"{h.get('user', '?')}, pid {h.get('pid', '?')} on {h.get('host', '?')}, "
                f"since {h.get('since', '?')}")
