"""The state of one run (or dry-run), split by what it holds.

- `RunOptions`: what the operator asked for (fixed for the run).
- `Scope`: the values a run can name (params, secrets, lets, variables, builtins) and which
  of them derive from a secret.
- `ResumeState`: what a resumed run takes over from its transcript and its store.
- `Runtime`: the run's collaborators (display, masker, recorder, executors, interrupts,
  clock) and the small helpers statements share (evaluate, record, mask).

`Frame` is where a statement runs (its step, its module, its local names).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..dataclass import dataclass, field
from ..errors import EvalError, Interrupted, StepFailed
from ..evaluation.evaluate import Evaluator
from ..evaluation.masking import Masker
from ..evaluation.values import Duration, Unknown, placeholder, to_text
from ..hints import TYPE_CHECKING, Protocol
from ..reporting.display import Display
from ..syntax import nodes as n
from ..syntax.loader import Module

if TYPE_CHECKING:
    from typing import Any

# Values derived from a secret are masked from this length on (see Scope.mask_derived).
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
    output_json: bool = False
    # Steps on hosts (LANGUAGE.md §11): `--limit`, `--forks`, `--ssh-config`.
    limit: str | None = None
    forks: int = 10
    ssh_config: str | None = None
    # A team store's database role: the operator, and the only name a decision made in this
    # run (the terminal, --approve) can carry (LANGUAGE.md §12).
    role: str | None = None


@dataclass
class StepRun:
    """One executed step instance (`NAME`, `NAME[item]` for a `for` step, `NAME[host]` for
    a step that runs `on` hosts)."""

    unit: Any  # n.Step | n.Gate; None for a module's own frame
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
    of: str = ""  # "i/n": which instance of a `for` step this is, shown beside its name
    # An instance of an `on` step: its host (a `targets.model.Host`), the names it sees
    # before the run-wide ones (`host`, `vars`, and what it sets itself), its place among
    # the step's hosts and batches (1-based), its `dir` on the host.
    host: Any = None
    bindings: dict = field(default_factory=dict)
    position: int = 0
    hosts: int = 0
    batch: int = 0
    remote_dir: str | None = None
    # The host could not be reached (the instance failed with reason `unreachable`).
    unreachable: bool = False

    @property
    def place(self) -> str:
        """"i/n": which instance of a `for` step, or which of a step's hosts, this is."""
        if self.of:
            return self.of
        if self.host is not None and self.hosts:
            return f"{self.position}/{self.hosts}"
        return ""


def undo_block(unit) -> list | None:
    """A step's undo block: `rollback { … }` or `on_failure rollback { … }`."""
    if unit is None or unit.kind not in ("step", "check_step"):
        return None
    if unit.rollback is not None:
        return unit.rollback
    if unit.on_failure is not None and unit.on_failure.body is not None:
        return unit.on_failure.body
    return None


def host_order(instances: list[StepRun]) -> list[StepRun]:
    """Instances of steps on hosts in the order a rollback unwinds them from: each step's
    instances by batch, then by the host's place (concurrent instances finish in any order,
    and a resumed run reads them in the order they finished)."""
    first: dict[str, int] = {}
    for index, step in enumerate(instances):
        first.setdefault(step.name.split("[")[0], index)

    def key(pair: tuple[int, StepRun]) -> tuple[int, int, int]:
        index, step = pair
        if step.host is None:
            return (index, 0, 0)
        return (first[step.name.split("[")[0]], step.batch, step.position)

    return [step for _, step in sorted(enumerate(instances), key=key)]


@dataclass
class Frame:
    """Where statements execute: the step, the module (for tasks and lets), local names."""

    step: StepRun
    module: Module
    locals: dict = field(default_factory=dict)
    phase: str = "step"  # step, rollback, finally
    depth: int = 0

    def source(self, expr) -> str:
        """An expression as written in its file (for plans and check reports)."""
        return self.module.source.text[expr.span.start:expr.span.end]

    def inner(self, extra: dict | None = None) -> Frame:
        """A nested frame (an `if` arm, a loop body): one level deeper, more names."""
        names = {**self.locals, **extra} if extra else self.locals
        return Frame(self.step, self.module, names, self.phase, self.depth + 1)


class Clock(Protocol):
    """Where a run reads the time: the system clock, or a test's."""

    def time(self) -> float:
        """Seconds since the epoch (for gate timeouts that outlive the process)."""

    def monotonic(self) -> float:
        """A monotonic clock (for deadlines within the process)."""


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Interrupts:
    """SIGINT/SIGTERM handling: stop the running command(s) and flag the run."""

    def __init__(self, on_signal: Callable[[], None] | None = None) -> None:
        self.event = threading.Event()
        self._on_signal = on_signal
        self._previous: dict = {}

    def install(self) -> None:
        """Route SIGINT and SIGTERM to `on_signal` (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.handle)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        """The signal handler: flag the run, stop what runs."""
        self.event.set()
        if self._on_signal is not None:
            self._on_signal()

    def check(self) -> None:
        """Raise Interrupted once a signal has arrived."""
        if self.event.is_set():
            raise Interrupted()

    def readline(self, stream, deadline: float | None = None) -> str:
        """A line typed at the terminal; Interrupted on Ctrl-C (a prompt must not swallow
        it), TimeoutError once `deadline` (a time.monotonic() value) has passed."""
        import select

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


class Scope:
    """The values of a run by name, and which derive from a secret."""

    def __init__(self, module: Module, masker: Masker, dry: bool) -> None:
        self.module = module
        self.masker = masker
        self.dry = dry
        self.params: dict = {}
        self.secrets: dict[str, str | Unknown] = {}
        self.variables: dict = {}
        # Per module: its params (main file), secrets and lets; `__secrets__` names those
        # that derive from a secret.
        self.globals: dict[Path, dict] = {}
        self.builtins: dict = {}
        self.tainted: set[str] = set()
        # Variable -> the step that sets it (for "not set: step X did not run").
        self.setters: dict[str, str] = {}
        # Secret-derived variables a resumed run cannot restore, with the step that set them.
        self.unrestorable: dict[str, str] = {}
        # Environment variables that hold a secret (`secret x from env "X"`): `getenv("X")`
        # reads a secret too.
        self.secret_env: set[str] = set()
        self._derived: set[str] = set()
        # Dry-run: each name only known at run time -> where it comes from (the plan's
        # legend for placeholders such as `<old_port>`).
        self.legend: dict[str, str] = {}

    def placeholder(self, name: str, origin: str) -> Unknown:
        """Dry-run: the value `name` will have at run time, noted in the legend."""
        self.legend.setdefault(name, origin)
        return placeholder(name, origin)

    def lookup(self, name: str, frame: Frame | None):
        """A name's value, looking in locals, the instance's own names (a step on hosts),
        run-wide variables, then the module's globals."""
        if frame is not None and name in frame.locals:
            return frame.locals[name]
        if frame is not None and name in frame.step.bindings:
            return frame.step.bindings[name]
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
            raise EvalError(f"`{name}` cannot be restored by a resumed run: the transcript "
                            "keeps it masked (it derives from a secret) or by its digest only "
                            f"(it is too large); it was set in step `{self.unrestorable[name]}`")
        if name in self.setters:
            if self.dry:
                return self.placeholder(name, f"set in step {self.setters[name]}")
            raise EvalError(f"`{name}` is not set: step `{self.setters[name]}`, which sets it, "
                            "did not run")
        if name in ("host", "vars"):
            raise EvalError(f"`{name}` is only defined inside a step that runs `on` hosts")
        raise EvalError(f"undefined name `{name}`")

    def bind(self, frame: Frame, name: str, value) -> None:
        """Set a variable where the statement runs: in a step on hosts, for that host's
        instance (and its undo) only; elsewhere for the whole run."""
        if frame.step.host is not None:
            frame.step.bindings[name] = value
        else:
            self.variables[name] = value

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
        """Whether an expression reads a secret (directly, through a variable, or by
        `getenv` of the variable a secret comes from)."""
        from ..syntax.walk import env_reads, names_in

        if self.secret_env and not self.secret_env.isdisjoint(env_reads(expr)):
            return True
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


@dataclass
class PendingRollback:
    """A rollback a resumed run takes over: the undo blocks it planned, those finished."""

    trigger: str
    steps: list[str]
    cause: str = "failed"  # failed (a step) or rejected (a gate)
    reason: str = ""
    done: set[str] = field(default_factory=set)
    failed: bool = False
    finished: bool = False


@dataclass
class Progress:
    """How far a run got, for a resumed run: what never runs again and what to unwind."""

    # Instances that finished (succeeded, skipped or tolerated): never run again.
    done: set[str] = field(default_factory=set)
    # Instances that succeeded, in order: what a rollback unwinds.
    completed: list[StepRun] = field(default_factory=list)
    # Every instance recorded so far, with its status and duration: the summary's rows.
    ran: list[StepRun] = field(default_factory=list)
    # A rollback under way (or finished) when the run stopped.
    rollback: PendingRollback | None = None


@dataclass
class ResumeState:
    """What a resumed run takes over: approvals recorded, decisions made since, waits."""

    prior_approvals: dict[str, list[str]] = field(default_factory=dict)
    stored_decisions: dict[str, list[dict]] = field(default_factory=dict)
    gate_waiting_since: dict[str, float] = field(default_factory=dict)
    operator_at_start: str | None = None


class Recorder(Protocol):
    """Where a real run's events go (a store's run writer)."""

    def append(self, event: str, **fields: object) -> dict: ...

    def sync(self) -> None: ...


class Runtime:
    """One run's collaborators, and the helpers its statements share."""

    def __init__(self, module: Module, options: RunOptions, display: Display,
                 clock: Clock | None = None) -> None:
        from .targets import Executors

        self.module = module
        self.options = options
        self.display = display
        self.dry = options.dry_run
        self.masker = Masker()
        display.mask = self.masker.mask
        self.scope = Scope(module, self.masker, self.dry)
        self.resume = ResumeState()
        self.clock: Clock = clock or SystemClock()
        self.base_dir = module.path.parent
        self.executors = Executors(self.base_dir, options.ssh_config)
        self.interrupts = Interrupts(self.executors.interrupt)
        # Set by `prepare`: the inventory, `--limit` and `--forks` (a `targets.Targets`).
        self.targets: Any = None
        # Instances of a step on hosts run in threads: each record is appended whole and
        # the chain stays one line after another; the lock's note is rewritten whole.
        self.record_lock = threading.RLock()
        # Set by the session: the run's writer (a real run) or the plan (a dry-run).
        self.recorder: Any = None
        # Set by the session: told of each command's process group (the run lock).
        self.processes: Any = None
        self.secret_status: list[dict] = []
        # Set by the session for a real run: identities and signatures (signoff.RunTrust).
        self.trust: Any = None

    # ------------------------------------------------------------------ values

    def evaluator(self, frame: Frame | None) -> Evaluator:
        """An evaluator that sees what `frame` sees."""
        return self.scope.evaluator(frame)

    def value(self, expr, frame: Frame):
        """Evaluate, turning evaluation errors into a step failure that says where."""
        try:
            return self.scope.evaluator(frame).eval(expr)
        except EvalError as error:
            raise StepFailed(f"line {expr.span.line}: {error.render(self.mask)}") from None

    def text(self, string: n.String, frame: Frame, quote: bool = False) -> str:
        """Render a string (shell-quoted interpolations with `quote`)."""
        try:
            return self.scope.evaluator(frame).render(string, quote=quote)
        except EvalError as error:
            raise StepFailed(f"line {string.span.line}: {error.render(self.mask)}") from None

    def duration(self, expr, frame: Frame, what: str):
        """A duration (or, in a dry-run, an Unknown), else the step fails."""
        value = self.value(expr, frame)
        if isinstance(value, (Duration, Unknown)):
            return value
        raise StepFailed(f"line {expr.span.line}: `{what}` needs a duration, got "
                         f"{self.shown(value)}")

    def shown(self, value) -> str:
        """A value quoted for a message: masked first, so that quoting or cutting it cannot
        keep a secret from the mask (LANGUAGE.md §6.2)."""
        return EvalError("{0}", to_text(value), width=200).render(self.mask)

    def time_left(self, frame: Frame) -> float | None:
        """Seconds until the step's timeout (None without one)."""
        if frame.step.deadline is None:
            return None
        return frame.step.deadline - self.clock.monotonic()

    # ------------------------------------------------------------------ output and record

    def mask(self, text: str) -> str:
        """Text with every secret value replaced by ***."""
        return self.masker.mask(text)

    def sync(self) -> None:
        """Make the record durable (before each step starts)."""
        if self.recorder is not None and not self.dry:
            with self.record_lock:
                self.recorder.sync()

    def record(self, event: str, **fields) -> dict | None:
        """Append an event to the transcript (nothing in a dry-run). Safe from the threads
        of a step's hosts: one record at a time, each chained to the one before."""
        if self.recorder is None or self.dry:
            return None
        with self.record_lock:
            return self.recorder.append(event, **fields)

    def plan(self, frame: Frame, kind: str, **details) -> None:
        """Dry-run: add what a statement would do to the plan."""
        self.recorder.action(frame, kind, **details)
