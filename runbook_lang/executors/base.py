"""The executor interface: what every kind of target implements (see `executors/__init__`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..dataclass import dataclass, field
from ..hints import Protocol


@dataclass(frozen=True)
class CommandSpec:
    """One shell command as a step asks for it.

    `command` is the shell text with every interpolation already quoted for its context.
    `env` holds only the step's `env { … }` values: the executor adds them to its own base
    environment and never passes them in process arguments. `cwd` is relative to the
    executor's default directory (or absolute); None means that default. `timeout` is in
    seconds; when it passes, the executor stops the command's whole process group (SIGTERM,
    then SIGKILL after `grace` seconds).
    """

    command: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
    grace: float = 5.0
    # Told once the command's process group exists: {"pgid": int, "start": str, "host": str}.
    # A run records it so that a later run refuses to start while a group left by a killed
    # run lives on (LANGUAGE.md §6.5).
    on_start: Callable[[dict], None] | None = None


class Sink(Protocol):
    """Receives one output stream of a command, as raw chunks in order."""

    def take(self, chunk: bytes) -> None:
        """One chunk as read from the command."""

    def finish(self) -> None:
        """The stream ended (or will no longer be read)."""


@dataclass(frozen=True)
class Exit:
    """How a command ended.

    `code` is the command's exit status (128+N when killed by signal N, 127 when it could
    not start). `error` says why the command never ran at all (cannot start, host
    unreachable, authentication refused); then `code` is 127 for a local start failure and
    255 for a connection failure, and `error` is one line for people.
    """

    code: int
    duration_ms: int
    timed_out: bool = False
    interrupted: bool = False
    error: str | None = None
    unreachable: bool = False


class Executor(Protocol):
    """Runs commands on one target. One instance per target per run."""

    # "local", or "ssh:ALIAS": recorded with each command.
    target: str

    def open(self) -> None:
        """Get ready to run commands (connect once per run); local: nothing to do."""

    def run(self, spec: CommandSpec, out: Sink, err: Sink) -> Exit:
        """Run one command to its end, streaming its output into `out` and `err`.

        Never raises for the command's sake: a command that cannot run is an `Exit` with
        `error` set. The command's stdin is empty.
        """

    def interrupt(self) -> None:
        """Stop the command running now, if any (its whole process group). Safe to call
        from a signal handler or another thread; without a running command it does
        nothing."""

    def close(self) -> None:
        """Release what `open` took (the connection); closing twice is harmless."""
