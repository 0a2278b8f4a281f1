"""One shell command of a step: run through the step's executor, streamed, masked, recorded.

The executor only moves bytes; everything a reader of the record relies on happens here and
in `executors.streams`, the same for every target: the masked command and its directory in
`command_started`, the digests and tails of both streams and their logs in
`command_finished`, the step's timeout as the command's limit. An instance of a step on
hosts runs its commands on its host (`Executors.for_host`); its records name the host, and
its output is shown a whole line at a time, each line under the host's name, so that the
hosts of a batch never interleave half-lines.
"""

from __future__ import annotations

from ..dataclass import dataclass
from ..errors import Interrupted, StepFailed
from ..executors import CommandSpec, Exit
from ..executors.streams import LogSink, Output, StreamDigest
from .runtime import Frame, Runtime


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command: how it ended and what it printed."""

    exit: Exit
    stdout: StreamDigest
    stderr: StreamDigest
    captured: str | None

    @property
    def exit_code(self) -> int:
        return self.exit.code

    @property
    def duration_ms(self) -> int:
        return self.exit.duration_ms


def run_command(rt: Runtime, command: str, frame: Frame, capture: bool) -> CommandResult:
    """Run one shell command for the current step, recorded and streamed."""
    step = frame.step
    left = rt.time_left(frame)
    if left is not None and left <= 0:
        raise StepFailed(f"timed out (timeout {step_timeout_text(frame)})")
    host = step.host
    remote = host is not None and host.connection != "local"
    # On a host, `dir` is relative to the login directory (`~`), as ssh starts there.
    cwd = (step.remote_dir or "~") if remote else str(step.cwd)
    where = {"host": host.name} if host is not None else {}
    started = rt.record("command_started", step=step.name, command=command, cwd=cwd,
                        phase=frame.phase, **where)
    assert started is not None
    out_log = LazyLog(rt.recorder, started["seq"], step.name, "stdout")
    err_log = LazyLog(rt.recorder, started["seq"], step.name, "stderr")
    echo = HostLines(rt.display, host.name) if host is not None else None
    show = echo.take if echo is not None else rt.display.output
    out = Output("stdout", rt.masker.stream(), out_log, show, capture)
    err = Output("stderr", rt.masker.stream(), err_log, show)
    groups = _Groups(rt)
    spec = CommandSpec(command, env=step.env,
                       cwd=step.remote_dir if remote else str(step.cwd), timeout=left,
                       on_start=groups.started if rt.processes is not None else None)
    try:
        executor = rt.executors.for_host(host)
        # A signal that came since the last statement began must not start a command.
        rt.interrupts.check()
        ended = executor.run(spec, out, err)
    finally:
        out_log.close()
        err_log.close()
        groups.ended()
        if echo is not None:
            echo.flush()
    result = CommandResult(ended, out.digest(), err.digest(), out.captured())
    unreachable = {"unreachable": True} if ended.unreachable else {}
    rt.record(
        "command_finished", step=step.name, command=command, cwd=cwd,
        exit_code=ended.code, duration_ms=ended.duration_ms,
        stdout={**_digest(result.stdout), "log": out_log.name},
        stderr={**_digest(result.stderr), "log": err_log.name},
        log=out_log.name, timed_out=ended.timed_out, phase=frame.phase, **where, **unreachable)
    if ended.interrupted:
        raise Interrupted()
    if ended.timed_out:
        raise StepFailed(f"timed out (timeout {step_timeout_text(frame)}); the command's "
                         "process group was stopped")
    if ended.unreachable:
        # The instance fails as `unreachable`; a retry connects again.
        step.unreachable = True
        raise StepFailed(f"unreachable: {rt.mask(ended.error or 'cannot connect')}")
    return result


class LazyLog:
    """A stream's log, made by the store when the first byte arrives (a `LogSink`).

    Most commands print little or nothing: a silent stream gets no log at all (its record
    says `log: null`, and its size, digest and tail say the rest), which spares every such
    command the store's work of making and closing a log."""

    def __init__(self, recorder, seq: int, step: str, stream: str) -> None:
        self._open = lambda: recorder.output(seq, step, stream)
        self._log: LogSink | None = None
        self.name: str | None = None

    def write(self, data: bytes) -> None:
        if self._log is None:
            self._log, self.name = self._open()
        self._log.write(data)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


class HostLines:
    """The live output of a command on a host: whole lines, each under the host's name.

    The hosts of a batch run at once; a line is printed only once it is complete (or the
    command ended), in one write, so lines of two hosts never mix."""

    def __init__(self, display, host: str) -> None:
        self.display = display
        self.host = host
        self._partial: dict[str, bytes] = {}  # by stream

    def take(self, stream_name: str, chunk: bytes) -> None:
        lines = (self._partial.get(stream_name, b"") + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            self.display.host_line(self.host, line)
        if len(rest) > 1 << 16:
            # A line without end (a progress bar): shown in pieces rather than held.
            self.display.host_line(self.host, rest)
            rest = b""
        self._partial[stream_name] = rest

    def flush(self) -> None:
        for rest in self._partial.values():
            if rest:
                self.display.host_line(self.host, rest)
        self._partial.clear()


class _Groups:
    """Tells the run lock of a command's process group while it lives (LANGUAGE.md §6.5)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.infos: list[dict] = []

    def started(self, info: dict) -> None:
        self.infos.append(info)
        with self.rt.record_lock:  # the hosts of a batch rewrite the one note
            self.rt.processes.note_process(info)

    def ended(self) -> None:
        for info in self.infos:
            with self.rt.record_lock:
                self.rt.processes.clear_process(info)


def command_failure(rt: Runtime, result: CommandResult, command: str) -> str:
    """One line saying why a command failed."""
    tail = result.stderr.tail.strip().splitlines()
    last = f": {tail[-1][:200]}" if tail else ""
    first_line = command.strip().splitlines()[0] if command.strip() else command
    shown = rt.mask(first_line)[:80]
    return f"command exited with {result.exit_code} ({shown}){last}"


def _digest(stream: StreamDigest) -> dict:
    return {"bytes": stream.bytes, "sha256": stream.sha256, "tail": stream.tail}


def step_timeout_text(frame: Frame) -> str:
    """The step's timeout as written, for messages."""
    timeout = frame.step.unit.timeout
    if timeout is None:
        return "?"
    return getattr(timeout, "text", None) or "set"
