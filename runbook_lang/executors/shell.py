"""The process boundary: run one shell command, stream its output, stop its process group.

A command runs as ``/bin/sh -c COMMAND`` in a session of its own, so that a timeout or an
interrupt can stop everything it started (LANGUAGE.md §4, §7) and the terminal's Ctrl-C
reaches the interpreter, not the command. Both pipes are streamed in chunks: each chunk is
masked, hashed, written to its log and echoed; only the capped ``capture`` is held whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..evaluation.masking import Masker, StreamMasker

CHUNK = 1 << 20
CAPTURE_LIMIT = 16 << 20
TAIL_BYTES = 2048
TAIL_LINES = 20
NOT_STARTED = 127
# How long output is still read after the shell exits while a background process it
# started keeps the pipe open (a daemon must not hang the step).
POST_EXIT_WAIT = 0.2
# How long to wait for SIGKILLed processes to vanish before giving up on them.
KILL_WAIT = 1.0
_STOP_POLL = 0.02
_EXIT_POLL = 0.05  # only where pidfd_open is missing

Echo = Callable[[str, bytes], None]


@dataclass(frozen=True)
class StreamDigest:
    """What the transcript records of one output stream (after masking)."""

    bytes: int
    sha256: str
    tail: str


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one ``run_command`` call."""

    exit_code: int
    duration_ms: int
    stdout: StreamDigest
    stderr: StreamDigest
    captured: str | None
    capture_truncated: bool
    timed_out: bool
    interrupted: bool


# Runs in progress, for interrupt(). The lock is re-entrant because interrupt() may run
# as a signal handler in the very thread that holds it.
_active: set[_Stopper] = set()
_lock = threading.RLock()


def interrupt() -> None:
    """Stop the command(s) currently running: SIGTERM their process group, SIGKILL after
    the grace period. Safe to call from a signal handler or another thread. Calls made
    while no command runs have no effect: the caller keeps its own interrupted state.
    """
    with _lock:
        for stopper in tuple(_active):
            stopper.request()


def run_command(
    command: str,
    *,
    env: Mapping[str, str],
    cwd: str,
    masker: Masker,
    stdout_log: Path | None,
    stderr_log: Path | None,
    timeout: float | None = None,
    capture: bool = False,
    echo: Echo | None = None,
    grace: float = 5.0,
) -> CommandResult:
    """Run ``/bin/sh -c command`` with exactly ``env`` in ``cwd``, stdin from /dev/null.

    Output is masked by ``masker`` before it is hashed, logged, echoed or captured, so the
    digests equal the SHA-256 of the log files. A command that cannot start (a missing
    ``cwd`` included) yields exit code 127 with the reason in stderr; this never raises
    for the command's sake.
    """
    started = time.monotonic()
    logs = _Logs()
    try:
        out = _Output("stdout", masker.stream(), echo, capture)
        err = _Output("stderr", masker.stream(), echo, False)
        try:
            out.log = logs.open(stdout_log)
            err.log = logs.open(stderr_log)
        except OSError as exc:
            return _not_started(f"runbook: cannot open output log: {exc}", out, err, started)
        with _Stopper() as stopper:
            try:
                proc = _spawn(command, env, cwd)
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                return _not_started(f"runbook: cannot start command: {exc}", out, err, started)
            supervisor = _Supervisor(proc, (out, err), stopper, timeout, grace)
            supervisor.supervise()
        return _result(supervisor, out, err, started)
    finally:
        logs.close()


def _spawn(command: str, env: Mapping[str, str], cwd: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        bufsize=0,
    )
    for pipe in (proc.stdout, proc.stderr):
        _widen_pipe(pipe.fileno())
    return proc


def _widen_pipe(fd: int) -> None:
    # The default 64 KiB pipe means a syscall and a chunk of Python work per 64 KiB; a
    # 1 MiB pipe lets large outputs arrive in 1 MiB reads. Best effort: the system limit
    # (fs.pipe-max-size) may refuse it.
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setsz, CHUNK)


def _not_started(message: str, out: _Output, err: _Output, started: float) -> CommandResult:
    err.take((message + "\n").encode("utf-8", "replace"))
    out.finish()
    err.finish()
    return _build(out, err, NOT_STARTED, started, timed_out=False, interrupted=False)


def _result(sup: _Supervisor, out: _Output, err: _Output, started: float) -> CommandResult:
    code = sup.returncode
    exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as sh does
    return _build(out, err, exit_code, started, sup.timed_out, sup.interrupted)


def _build(
    out: _Output,
    err: _Output,
    exit_code: int,
    started: float,
    timed_out: bool,
    interrupted: bool,
) -> CommandResult:
    return CommandResult(
        exit_code=exit_code,
        duration_ms=round((time.monotonic() - started) * 1000),
        stdout=out.digest(),
        stderr=err.digest(),
        captured=out.captured(),
        capture_truncated=out.capture_truncated,
        timed_out=timed_out,
        interrupted=interrupted,
    )


class _Logs:
    """The output log files of one command; one descriptor per distinct path."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def open(self, path: Path | None) -> int | None:
        if path is None:
            return None
        path = Path(path).absolute()
        if path not in self._fds:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            self._fds[path] = os.open(path, flags, 0o644)
        return self._fds[path]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class _Output:
    """One output stream on its way out: masked, counted, hashed, tailed, logged, echoed."""

    def __init__(self, name: str, masking: StreamMasker, echo: Echo | None, capture: bool):
        self.name = name
        self.log: int | None = None
        self.capture_truncated = False
        self._masking = masking
        self._echo = echo
        self._sha = hashlib.sha256()
        self._size = 0
        self._tail = b""
        self._captured: list[bytes] | None = [] if capture else None
        self._captured_size = 0

    def take(self, raw: bytes) -> None:
        """Pass one chunk read from the pipe."""
        self._emit(self._masking.feed(raw))

    def finish(self) -> None:
        """End of stream: release what masking held back."""
        self._emit(self._masking.flush())

    def digest(self) -> StreamDigest:
        return StreamDigest(self._size, self._sha.hexdigest(), _tail_text(self._tail, self._size))

    def captured(self) -> str | None:
        if self._captured is None:
            return None
        return b"".join(self._captured).decode("utf-8", "replace")

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        self._sha.update(data)
        if len(data) >= TAIL_BYTES:
            self._tail = data[-TAIL_BYTES:]
        else:
            self._tail = (self._tail + data)[-TAIL_BYTES:]
        if self.log is not None:
            _write_all(self.log, data)
        if self._captured is not None:
            self._capture(data)
        if self._echo is not None:
            self._echo(self.name, data)

    def _capture(self, data: bytes) -> None:
        room = CAPTURE_LIMIT - self._captured_size
        if len(data) > room:
            data = data[:room]
            self.capture_truncated = True
        if data:
            self._captured.append(data)
            self._captured_size += len(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _tail_text(tail: bytes, total: int) -> str:
    if total > len(tail):
        # The cut may have split a UTF-8 sequence: drop its continuation bytes.
        skip = 0
        while skip < min(3, len(tail)) and 0x80 <= tail[skip] < 0xC0:
            skip += 1
        tail = tail[skip:]
    lines = tail.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(lines[-TAIL_LINES:])


class _Stopper:
    """A run's end of interrupt(): a self-pipe that wakes its select loop."""

    def __init__(self) -> None:
        self.read_fd = -1
        self._write_fd = -1

    def __enter__(self) -> _Stopper:
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)
        with _lock:
            _active.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        # Under the lock, so interrupt() never writes to a descriptor number that has
        # been closed and reused meanwhile.
        with _lock:
            _active.discard(self)
            os.close(self.read_fd)
            os.close(self._write_fd)

    def request(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"x")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.read_fd, 64):
                pass


class _Supervisor:
    """Pumps a child's pipes until it is done, and enforces timeout and interrupt.

    Done means: the shell has exited and been reaped; both pipes reached EOF, or
    POST_EXIT_WAIT passed since the exit; and, once a stop began, no live process is
    left in the group (or KILL_WAIT passed after SIGKILL).
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        outputs: tuple[_Output, _Output],
        stopper: _Stopper,
        timeout: float | None,
        grace: float,
    ) -> None:
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the shell leads its own group
        self.stopper = stopper
        self.grace = grace
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.returncode = 0
        self.timed_out = False
        self.interrupted = False
        self._outputs = {proc.stdout.fileno(): outputs[0], proc.stderr.fileno(): outputs[1]}
        self._exited_at: float | None = None
        self._term_at: float | None = None
        self._kill_at: float | None = None
        self._pidfd: int | None = None
        self._selector: selectors.BaseSelector | None = None

    def supervise(self) -> None:
        """Run the loop; on any exception the whole group is killed before it propagates."""
        try:
            self._selector = _new_selector()
            self._register()
            self._loop()
            # Pipes still open here are held by a background process: stop reading them.
            for fd in list(self._outputs):
                self._outputs.pop(fd).finish()
        finally:
            self._close()

    def _register(self) -> None:
        for fd in self._outputs:
            self._selector.register(fd, selectors.EVENT_READ, "pipe")
        self._selector.register(self.stopper.read_fd, selectors.EVENT_READ, "stop")
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None  # older kernel or not Linux: poll for the exit instead
        else:
            self._selector.register(self._pidfd, selectors.EVENT_READ, "exit")

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            self._check_clocks(now)
            if self._finished(now):
                return
            for key, _ in self._selector.select(self._wait_time(now)):
                self._dispatch(key)
            if self._pidfd is None and self._exited_at is None:
                self._poll_exit()

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        if key.data == "pipe":
            self._read(key.fd)
        elif key.data == "exit":
            self._reap()
        else:
            self.stopper.drain()
            if self._exited_at is None:
                self._stop(interrupt=True)

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        if chunk:
            self._outputs[fd].take(chunk)
        else:
            self._end_pipe(fd)

    def _end_pipe(self, fd: int) -> None:
        self._selector.unregister(fd)
        self._outputs.pop(fd).finish()

    def _reap(self) -> None:
        self.returncode = self.proc.wait()
        self._exited_at = time.monotonic()
        if self._pidfd is not None:
            self._selector.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def _poll_exit(self) -> None:
        if self.proc.poll() is not None:
            self._reap()

    def _check_clocks(self, now: float) -> None:
        if self._exited_at is None and self.deadline is not None and now >= self.deadline:
            self.timed_out = True
            self._stop(interrupt=False)
        if self._term_at is not None and self._kill_at is None:
            if now >= self._term_at + self.grace:
                if self._group_alive():
                    self._signal_group(signal.SIGKILL)
                self._kill_at = now

    def _stop(self, *, interrupt: bool) -> None:
        if interrupt:
            self.interrupted = True
        if self._term_at is not None:
            return
        self._term_at = time.monotonic()
        self._signal_group(signal.SIGTERM)
        # A stopped process acts on SIGTERM only once continued.
        self._signal_group(signal.SIGCONT)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def _finished(self, now: float) -> bool:
        if self._exited_at is None:
            return False
        if self._outputs and now < self._exited_at + POST_EXIT_WAIT:
            return False
        if self._term_at is None:
            return True
        if self._kill_at is not None and now >= self._kill_at + KILL_WAIT:
            return True
        return not self._group_alive()

    def _group_alive(self) -> bool:
        if self._exited_at is not None:
            _reap_group(self.pgid)
        return _group_alive(self.pgid)

    def _wait_time(self, now: float) -> float | None:
        wakeups: list[float] = []
        if self._exited_at is None:
            if self.deadline is not None and self._term_at is None:
                wakeups.append(self.deadline - now)
            if self._pidfd is None:
                wakeups.append(_EXIT_POLL)
        elif self._outputs:
            wakeups.append(self._exited_at + POST_EXIT_WAIT - now)
        if self._term_at is not None:
            # Nothing signals the death of the group's other members: poll for it.
            wakeups.append(_STOP_POLL)
        return max(min(wakeups), 0.0) if wakeups else None

    def _await_group_end(self) -> None:
        give_up = time.monotonic() + KILL_WAIT
        while self._group_alive() and time.monotonic() < give_up:
            time.sleep(_STOP_POLL / 4)

    def _close(self) -> None:
        if self.proc.returncode is None:
            # Leaving on an exception (KeyboardInterrupt, a failing echo): take the whole
            # group down rather than leave it running unsupervised.
            self._signal_group(signal.SIGKILL)
            self.returncode = self.proc.wait()
            self._exited_at = time.monotonic()
            self._await_group_end()
        if self._pidfd is not None:
            os.close(self._pidfd)
        if self._selector is not None:
            self._selector.close()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _new_selector() -> selectors.BaseSelector:
    # poll(2) needs no descriptor of its own, unlike epoll: cheaper for four fds.
    if hasattr(selectors, "PollSelector"):
        return selectors.PollSelector()
    return selectors.SelectSelector()


def _reap_group(pgid: int) -> None:
    """Reap exited group members that were reparented to us (we are PID 1 or a
    subreaper); elsewhere there are none and this is one failing syscall."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass


def _group_alive(pgid: int) -> bool:
    """True while a process of the group is alive; zombies do not count.

    An init that does not reap (some containers) leaves zombies that ``killpg(pgid, 0)``
    still finds; they hold no resources and cannot be killed, so /proc decides.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    return any(_is_live_member(name, pgid) for name in names if name.isdigit())


def _is_live_member(pid: str, pgid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # Fields after the parenthesised command name: state, ppid, pgrp, ...
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[2]) == pgid and fields[0] not in (b"Z", b"X")
    except (IndexError, ValueError):
        return False
