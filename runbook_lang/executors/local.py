"""The local executor: a command as its own process group on this machine.

A command runs as ``/bin/sh -c COMMAND`` in a session of its own, so that a timeout or an
interrupt can stop everything it started (LANGUAGE.md §4, §7) and the terminal's Ctrl-C
reaches the interpreter, not the command. Both pipes are pumped in chunks into the sinks the
caller gives (`streams.Output`), which mask, hash, log and echo them.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import select
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .base import CommandSpec, Exit, Sink

CHUNK = 1 << 20
FIRST_READ = 1 << 16
NOT_STARTED = 127
# How long output is still read after the shell exits while a background process it
# started keeps the pipe open (a daemon must not hang the step).
POST_EXIT_WAIT = 0.2
# How long to wait for SIGKILLed processes to vanish before giving up on them.
KILL_WAIT = 1.0
_STOP_POLL = 0.02
_EXIT_POLL = 0.05  # only where pidfd_open is missing


class LocalExecutor:
    """Runs commands on this machine, each in a process group of its own.

    `cwd` is the default directory (the runbook's folder) and `env` the base environment
    (this process's, by default); a step's `env { }` is added on top.
    """

    target = "local"

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = Path(cwd)
        self._cwd_text = str(self.cwd)
        self.env = dict(os.environ if env is None else env)
        # Without an env of its own, a command inherits this process's environment as it
        # is: the child gets it from the C library, not re-encoded variable by variable.
        self._inherits = env is None
        # Every command's stdin: /dev/null, opened once for the run rather than per command.
        self._devnull: int | None = None
        # Runs in progress, for interrupt(). Re-entrant because interrupt() may run as a
        # signal handler in the very thread that holds it.
        self._active: set[_Stopper] = set()
        # Self-pipes of finished runs, kept for the next ones (a pipe per command cost five
        # system calls).
        self._idle: list[_Stopper] = []
        self._lock = threading.RLock()

    def open(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Release /dev/null and the idle self-pipes (made again if a command runs after)."""
        with self._lock:
            devnull, self._devnull = self._devnull, None
            idle, self._idle = self._idle, []
        if devnull is not None:
            os.close(devnull)
        for stopper in idle:
            stopper.close()

    def _stopper(self) -> _Stopper:
        with self._lock:
            return self._idle.pop() if self._idle else _Stopper(self)

    def _stdin(self) -> int:
        with self._lock:  # the hosts of a batch may start commands at once
            if self._devnull is None:
                self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            return self._devnull

    def interrupt(self) -> None:
        """Stop the command(s) running now: SIGTERM their process group, SIGKILL after the
        grace period. Safe from a signal handler or another thread; without a running
        command it does nothing (the caller keeps its own interrupted state)."""
        with self._lock:
            for stopper in tuple(self._active):
                stopper.request()

    def run(self, spec: CommandSpec, out: Sink, err: Sink) -> Exit:
        """Run ``/bin/sh -c`` with the base environment plus ``spec.env``, stdin empty."""
        started = time.monotonic()
        # A step's directory is absolute (the runbook's folder, or `dir` under it): joined
        # as text, not as a Path, on the path of every command.
        cwd = os.path.join(self._cwd_text, spec.cwd) if spec.cwd else self._cwd_text
        with self._stopper() as stopper:
            mark = spawn_mark() if spec.on_start is not None else None
            try:
                env = None if self._inherits and not spec.env else {**self.env, **spec.env}
                proc, pipes = _spawn(spec.command, env, cwd, self._stdin())
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                return _not_started(f"cannot start command: {_reason(exc)}", out, err, started)
            supervisor = _Supervisor(proc, pipes, (out, err), stopper, spec.timeout,
                                     spec.grace)
            if spec.on_start is not None:
                try:
                    spec.on_start({"pgid": proc.pid, "start": mark, "host": "local"})
                except BaseException:
                    supervisor.abandon()  # a command the run cannot account for is stopped
                    raise
            supervisor.supervise()
        code = supervisor.returncode
        return Exit(code=128 - code if code < 0 else code,  # killed by signal N: 128 + N
                    duration_ms=round((time.monotonic() - started) * 1000),
                    timed_out=supervisor.timed_out, interrupted=supervisor.interrupted)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc)


def _spawn(command: str, env: Mapping[str, str] | None, cwd: str,
           stdin: int) -> tuple[subprocess.Popen[bytes], tuple[int, int]]:
    """The command's process, and the read ends of its stdout and stderr pipes.

    The pipes are made here, not by Popen: it would wrap each end in a file object (a
    stat and an object per pipe) that the supervisor reads around anyway."""
    out_read, out_write = os.pipe()  # not inherited (the child gets them as 1 and 2)
    try:
        err_read, err_write = os.pipe()
    except OSError:
        os.close(out_read)
        os.close(out_write)
        raise
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=stdin,
            stdout=out_write,
            stderr=err_write,
            env=env,
            cwd=cwd,
            start_new_session=True,
            bufsize=0,
        )
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        os.close(out_write)  # the child's now: its end of file reaches us when it exits
        os.close(err_write)
    return proc, (out_read, err_read)


def _widen_pipe(fd: int) -> None:
    # The default 64 KiB pipe means a syscall and a chunk of Python work per 64 KiB; a
    # 1 MiB pipe lets large outputs arrive in 1 MiB reads. Best effort: the system limit
    # (fs.pipe-max-size) may refuse it.
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setsz, CHUNK)


def _not_started(message: str, out: Sink, err: Sink, started: float) -> Exit:
    err.take(f"runbook: {message}\n".encode("utf-8", "replace"))
    out.finish()
    err.finish()
    return Exit(NOT_STARTED, round((time.monotonic() - started) * 1000), error=message)


# How long after its spawn mark a command's process may have started and still be taken for
# it. A pid comes round again only after the whole pid space has been used, so a process
# that got the pid within this window is ours; a longer window errs on the safe side (a
# run refused, naming the group) rather than let a live command go unseen.
START_WINDOW_SECONDS = 30
_boot: list[str] = []


def spawn_mark() -> str | None:
    """The boot's id and the clock tick (since boot) just before a command is spawned: with
    its pid, they name the command's process also after the pid is reused — its start time
    (`/proc/PID/stat`, the same clock) lies within START_WINDOW_SECONDS after the mark.
    Taken without reading /proc for each command (None where there is no /proc)."""
    boot = _boot_id()
    if boot is None:
        return None
    ticks = int(time.clock_gettime(time.CLOCK_BOOTTIME) * _ticks_per_second())
    return f"{boot}:{ticks}"


def process_start(pid: int) -> str | None:
    """A process's start time in clock ticks since boot, with the boot's id (None when
    unknown)."""
    boot = _boot_id()
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    if boot is None:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return f"{boot}:{int(fields[19])}"


def _boot_id() -> str | None:
    if not _boot:
        try:
            _boot.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        except OSError:
            return None
    return _boot[0]


def _ticks_per_second() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


def group_alive(pgid: int, start: str | None = None) -> bool:
    """Whether process group `pgid` still has a live member; with `start` (a `spawn_mark`,
    or an exact start time as older notes hold), also whether it is the same group: its
    leader, if still there, started within START_WINDOW_SECONDS after it."""
    if not _group_alive(pgid):
        return False
    if start is None:
        return True
    leader = process_start(pgid)
    # A pid stays reserved while a group of that id has members, so a live group without
    # its leader is the one that was recorded.
    return leader is None or _started_within(leader, start)


def _started_within(leader: str, mark: str) -> bool:
    boot, _, ticks = leader.rpartition(":")
    mark_boot, _, mark_ticks = mark.rpartition(":")
    if boot != mark_boot:
        return False
    try:
        after = int(ticks) - int(mark_ticks)
    except ValueError:
        return leader == mark
    # One tick of slack: the mark is rounded down, the start time may be rounded too.
    return -1 <= after <= START_WINDOW_SECONDS * _ticks_per_second()


class _Stopper:
    """A run's end of interrupt(): a self-pipe that wakes its select loop. Reused by the
    executor's next runs; `close` ends it."""

    def __init__(self, owner: LocalExecutor) -> None:
        self.owner = owner
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._requested = False  # a request may have left a byte in the pipe

    def __enter__(self) -> _Stopper:
        with self.owner._lock:
            # A request that came after the last run ended is not for this one. (Only a
            # request can have left a byte: most runs skip the read, and its exception.)
            if self._requested:
                self.drain()
            self.owner._active.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        # Under the lock, so interrupt() never writes to a run that has ended.
        with self.owner._lock:
            self.owner._active.discard(self)
            self.owner._idle.append(self)

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self._write_fd)

    def request(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"x")
        # After the write: whenever a byte may be left, the flag says so (a drain that
        # runs between the two only clears a flag set again just after).
        self._requested = True

    def drain(self) -> None:
        self._requested = False
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
        pipes: tuple[int, int],
        outputs: tuple[Sink, Sink],
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
        self._pipes = pipes  # the read ends of stdout and stderr
        self._outputs = {pipes[0]: outputs[0], pipes[1]: outputs[1]}
        self._read_size: dict[int, int] = {}
        self._exited_at: float | None = None
        self._term_at: float | None = None
        self._kill_at: float | None = None
        self._pidfd: int | None = None
        self._selector = _Poller()

    def supervise(self) -> None:
        """Run the loop; on any exception the whole group is killed before it propagates."""
        try:
            self._register()
            self._loop()
            # Pipes still open here are held by a background process: stop reading them.
            for fd in list(self._outputs):
                self._outputs.pop(fd).finish()
        finally:
            self._close()

    def abandon(self) -> None:
        """Stop the command's whole group and release its pipes without supervising it."""
        self._close()

    def _register(self) -> None:
        for fd in self._outputs:
            self._selector.register(fd, "pipe")
        self._selector.register(self.stopper.read_fd, "stop")
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None  # older kernel or not Linux: poll for the exit instead
        else:
            self._selector.register(self._pidfd, "exit")

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            self._check_clocks(now)
            if self._finished(now):
                return
            for fd, what in self._selector.select(self._wait_time(now)):
                self._dispatch(fd, what)
            if self._pidfd is None and self._exited_at is None:
                self._poll_exit()

    def _dispatch(self, fd: int, what: str) -> None:
        if what == "pipe":
            self._read(fd)
        elif what == "exit":
            self._reap()
        else:
            self.stopper.drain()
            if self._exited_at is None:
                self._stop(interrupt=True)

    def _read(self, fd: int) -> None:
        # Most commands print little: a 64 KiB read (the pipe's size) costs no large buffer.
        # A command that fills the pipe gets a 1 MiB pipe and 1 MiB reads from then on.
        size = self._read_size.get(fd, FIRST_READ)
        try:
            chunk = os.read(fd, size)
        except BlockingIOError:
            return
        if chunk:
            if len(chunk) == size and size < CHUNK:
                _widen_pipe(fd)
                self._read_size[fd] = CHUNK
            self._outputs[fd].take(chunk)
        else:
            self._end_pipe(fd)

    def _end_pipe(self, fd: int) -> None:
        self._selector.unregister(fd)
        self._outputs.pop(fd).finish()

    def _reap(self) -> None:
        # The exit is known (pidfd or poll): wait for it directly, not through Popen.wait's
        # locking and bookkeeping; Popen keeps the status, as wait() would have set it. A
        # status Popen already has (poll() reaped it) is taken as is: the pid may be
        # another child's by now.
        if self.proc.returncode is not None:
            self.returncode = self.proc.returncode
        else:
            try:
                _, status = os.waitpid(self.proc.pid, 0)
            except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler)
                self.returncode = self.proc.wait()
            else:
                self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)
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
        self._selector.close()
        for pipe in self._pipes:
            os.close(pipe)


class _Poller:
    """Waits for a few descriptors to be readable: poll(2) itself where there is one (no
    descriptor of its own, unlike epoll, and none of `selectors`' bookkeeping per call,
    which cost a short command more than its pipes did), else `selectors`."""

    def __init__(self) -> None:
        self._what: dict[int, str] = {}
        self._poll = select.poll() if hasattr(select, "poll") else None
        self._fallback: selectors.BaseSelector | None = \
            None if self._poll is not None else selectors.DefaultSelector()

    def register(self, fd: int, what: str) -> None:
        self._what[fd] = what
        if self._poll is not None:
            self._poll.register(fd, select.POLLIN)
        elif self._fallback is not None:
            self._fallback.register(fd, selectors.EVENT_READ)

    def unregister(self, fd: int) -> None:
        del self._what[fd]
        if self._poll is not None:
            self._poll.unregister(fd)
        elif self._fallback is not None:
            self._fallback.unregister(fd)

    def select(self, timeout: float | None) -> list[tuple[int, str]]:
        """The ready descriptors and what each is; hung-up and failed ones count as ready
        (a read then finds the end)."""
        if self._poll is not None:
            # Rounded up: a wait must not end just before the deadline it was sized for.
            wait = None if timeout is None else math.ceil(timeout * 1000)
            ready = [fd for fd, _ in self._poll.poll(wait)]
        else:
            assert self._fallback is not None
            ready = [key.fd for key, _ in self._fallback.select(timeout)]
        return [(fd, self._what[fd]) for fd in ready if fd in self._what]

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()


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
