"""The state of one run (or dry-run): options, values in scope, the record being written.

`Runtime` is shared by the interpreter (which orders steps, failure policies and rollback)
and the statement executor; `Frame` is where a statement runs (its step, task, locals).
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EvalError, Interrupted
from ..evaluation.evaluate import Evaluator
from ..evaluation.masking import Masker
from ..evaluation.values import Unknown
from ..reporting.display import Display
from ..syntax import nodes as n
from ..syntax.loader import Module

# Values derived from a secret are masked from this length on (see Runtime.mask_derived).
MIN_DERIVED = 4


@dataclass
class RunOptions:
    """What the operator asked for on the command line."""

    dry_run: bool = False
    yes: bool = False
    approvals: dict[str, list[str | None]] = field(default_factory=dict)
    operator: str = "unknown"
    host: str = "localhost"
    from_step: str | None = None
    fail_at: str | None = None
    interactive: bool = False
    argv: list[str] = field(default_factory=list)
    transcript_dir: Path | None = None
    output_json: bool = False


@dataclass
class StepRun:
    """One executed step instance (`NAME` or `NAME[item]` for a `for` step)."""

    unit: n.Step | n.Gate
    name: str
    title: str
    number: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = Path(".")
    deadline: float | None = None
    loop: dict = field(default_factory=dict)
    duration_ms: int = 0
    status: str = "pending"
    status_reason: str = ""


@dataclass
class Frame:
    """Where statements execute: the step, the module (for tasks and lets), local names."""

    step: StepRun
    module: Module
    locals: dict = field(default_factory=dict)
    phase: str = "step"  # step, rollback, finally
    depth: int = 0


class Interrupts:
    """SIGINT/SIGTERM handling: stop the running command's group and flag the run."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict = {}

    def install(self) -> None:
        """Route SIGINT and SIGTERM to `on_signal` (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.on_signal)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_signal(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        from ..executors import shell

        self.event.set()
        shell.interrupt()

    def check(self) -> None:
        """Raise Interrupted once a signal has arrived."""
        if self.event.is_set():
            raise Interrupted()

    def readline(self, stream, deadline: float | None = None) -> str:
        """A line typed at the terminal; Interrupted on Ctrl-C (a prompt must not swallow
        it), TimeoutError once `deadline` (a time.monotonic() value) has passed."""
        import select
        import time

        while True:
            self.check()
            wait = 0.2
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError()
                wait = min(wait, left)
            try:
                ready, _, _ = select.select([stream], [], [], wait)
            except InterruptedError:
                continue
            if ready:
                return stream.readline()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once on a signal."""
        if seconds > 0 and self.event.wait(seconds):
            raise Interrupted()


class Runtime:
    """Values, options and sinks of one run; shared by the interpreter and statements."""

    def __init__(self, module: Module, options: RunOptions, display: Display) -> None:
        self.module = module
        self.options = options
        self.display = display
        self.dry = options.dry_run
        self.masker = Masker()
        display.mask = self.masker.mask
        self.params: dict = {}
        self.secrets: dict[str, str | Unknown] = {}
        self.variables: dict = {}
        self.globals: dict[Path, dict] = {}
        self.tainted: set[str] = set()
        self.setters: dict[str, str] = {}
        self.builtins: dict = {}
        self.recorder = None  # set by the interpreter: transcript writer or plan
        self.interrupts = Interrupts()
        # Filled by `runbook resume` from the transcript and from `runbook approve`.
        self.prior_approvals: dict[str, list[str]] = {}
        self.stored_decisions: dict[str, list[dict]] = {}
        self.gate_waiting_since: dict[str, float] = {}
        self.operator_at_start: str | None = None
        self.unrestorable: dict[str, str] = {}
        self.secret_status: list[dict] = []
        self._derived: set[str] = set()
        self.base_dir = module.path.parent
        self.base_env = dict(os.environ)

    # ------------------------------------------------------------------ names

    def lookup(self, name: str, frame: Frame | None):
        """A name's value, looking in locals, run-wide variables, then the module's globals."""
        if frame is not None and name in frame.locals:
            return frame.locals[name]
        if name in self.variables:
            return self.variables[name]
        module = frame.module if frame is not None else self.module
        scope = self.globals.get(module.path, {})
        if name in scope:
            return scope[name]
        if name in self.builtins:
            return self.builtins[name]
        imported = module.imports.get(name)
        if imported is not None and imported.path in self.globals:
            # `alias.let` reads an imported module's let.
            return {k: v for k, v in self.globals[imported.path].items()
                    if not k.startswith("__")}
        if name in self.unrestorable:
            raise EvalError(f"`{name}` derives from a secret, so the transcript keeps it masked "
                            f"and a resumed run cannot restore it (set in step "
                            f"`{self.unrestorable[name]}`)")
        if name in self.setters:
            if self.dry:
                return Unknown(f"{name}: set in step {self.setters[name]}")
            raise EvalError(f"`{name}` is not set: step `{self.setters[name]}`, which sets it, "
                            "did not run")
        raise EvalError(f"undefined name `{name}`")

    def evaluator(self, frame: Frame | None) -> Evaluator:
        """An evaluator that sees what `frame` sees."""
        return Evaluator(lambda name: self.lookup(name, frame),
                         lambda expr, text: self.mask_derived(expr, text, frame))

    def mask_derived(self, expr, text: str, frame: Frame | None) -> None:
        """A value computed from a secret (`lower(token)`, a let built on one) is masked
        from now on like the secret itself. Very short pieces (`token[0]`) are left alone:
        masking every single letter would make all output unreadable."""
        if len(text) >= MIN_DERIVED and text not in self._derived and \
                self.is_tainted(expr, frame):
            self._derived.add(text)
            self.masker.add(text)

    def is_tainted(self, expr, frame: Frame | None) -> bool:
        """Whether an expression reads a secret (directly or through a variable)."""
        from ..syntax.walk import names_in

        module = frame.module if frame is not None else self.module
        module_secrets = self.globals.get(module.path, {}).get("__secrets__", set())
        for name in names_in(expr):
            if frame is not None and name in frame.locals:
                if name in frame.locals.get("__tainted__", set()):
                    return True
                continue
            if name in self.tainted or name in module_secrets:
                return True
        return False

    def mask(self, text: str) -> str:
        """Text with every secret value replaced by ***."""
        return self.masker.mask(text)

    def sync(self) -> None:
        """Make the record durable (before each step starts)."""
        if self.recorder is not None and not self.dry:
            self.recorder.sync()

    def record(self, event: str, **fields) -> dict | None:
        """Append an event to the transcript (nothing in a dry-run)."""
        if self.recorder is None or self.dry:
            return None
        return self.recorder.append(event, **fields)
