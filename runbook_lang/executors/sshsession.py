"""One command over ssh, from start to end: feed the payload, pump the output, stop on
request, and tell what happened (`Exit`); and ssh's own failures in one line for people.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import subprocess
import time

from . import CommandSpec, Exit, Sink
from .remote import Payload, TrailerFilter, Trailers

CHUNK = 1 << 20
CONNECTION_FAILED = 255
NOT_STARTED = 127
# How long output is still read after the command ended while a background process it
# started keeps the channel open (a daemon must not hang the step), as locally.
POST_EXIT_WAIT = 0.2
# After a stop, how long the host may take beyond the grace period to confirm that the
# group is gone (the wrapper waits up to 1 s after SIGKILL) before ssh is cut off.
STOP_SLACK = 5.0
_KEEP_STDERR = 4096  # the end of stderr kept to explain a failure


class CommandSession:
    """The local `ssh` process of one command and the loop that supervises it."""

    def __init__(self, proc: subprocess.Popen[bytes], payload: Payload, stop_fd: int,
                 spec: CommandSpec, out: Sink, err: Sink, target: str) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.stdin, self.stdout, self.stderr = proc.stdin, proc.stdout, proc.stderr
        self.spec = spec
        self.out = out
        self.err = err
        self.stop_fd = stop_fd
        self.target = target
        self.trailers = TrailerFilter(payload.nonce)
        self.trailers.on_start = self._started
        self.timed_out = False
        self.interrupted = False
        self.stop_at: float | None = None  # when a stop began
        self.cut_off = False  # ssh had to be killed: the host never confirmed
        self._pending = memoryview(payload.data)
        self._deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
        self._exited_at: float | None = None  # the exit trailer arrived
        self._ended: float | None = None  # when ssh exited (and was reaped)
        self._open = {"out", "err"}  # output pipes not yet at end-of-file
        self._tail = b""
        self._pidfd: int | None = None
        self._sel = selectors.PollSelector() if hasattr(selectors, "PollSelector") \
            else selectors.SelectSelector()

    @classmethod
    def spawn(cls, args: list[str], payload: Payload, stop_fd: int, spec: CommandSpec,
              out: Sink, err: Sink, target: str) -> CommandSession:
        """Start `ssh ARGS` in a session of its own (the terminal's Ctrl-C is for runbook,
        which then stops the command on the host)."""
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, bufsize=0)
        session = cls(proc, payload, stop_fd, spec, out, err, target)
        for pipe in (session.stdout, session.stderr):
            _widen_pipe(pipe.fileno())
        os.set_blocking(session.stdin.fileno(), False)
        return session

    # -- the loop ---------------------------------------------------------------------------

    def supervise(self, host: str, cwd: str | None, started: float) -> Exit:
        """Run until ssh is gone; then the `Exit` of the command."""
        try:
            self._register()
            while not self._finished():
                timeout = self._wait_time()
                for key, _ in self._sel.select(timeout):
                    self._dispatch(key)
                self._check_clocks()
        finally:
            self._close()
        return self._exit(host, cwd, started)

    def _register(self) -> None:
        self._sel.register(self.stdout, selectors.EVENT_READ, "out")
        self._sel.register(self.stderr, selectors.EVENT_READ, "err")
        self._sel.register(self.stop_fd, selectors.EVENT_READ, "stop")
        if self._pending:
            self._sel.register(self.stdin, selectors.EVENT_WRITE, "in")
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None  # not Linux, or an old kernel: poll for the exit instead
        else:
            self._sel.register(self._pidfd, selectors.EVENT_READ, "exit")

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        if key.data == "out":
            self._read(key.fileobj, self.out)
        elif key.data == "err":
            self._read(key.fileobj, self.err)
        elif key.data == "in":
            self._feed()
        elif key.data == "exit":
            self._sel.unregister(key.fd)
            self._reap()
        else:
            with contextlib.suppress(BlockingIOError, OSError):
                while os.read(self.stop_fd, 64):
                    pass
            if self._exited_at is None:
                self._stop(interrupt=True)

    def _read(self, pipe, sink: Sink) -> None:
        try:
            chunk = os.read(pipe.fileno(), CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            self._sel.unregister(pipe)
            self._open.discard("err" if sink is self.err else "out")
            if sink is self.err:
                self._keep(self.trailers.flush(), sink)
            return
        if sink is self.err:
            chunk = self.trailers.feed(chunk)
            self._keep(chunk, sink)
        elif chunk:
            sink.take(chunk)

    def _keep(self, chunk: bytes, sink: Sink) -> None:
        if chunk:
            self._tail = (self._tail + chunk)[-_KEEP_STDERR:]
            sink.take(chunk)
        if self.trailers.found.status is not None and self._exited_at is None:
            self._exited_at = time.monotonic()

    def _feed(self) -> None:
        try:
            written = os.write(self.stdin.fileno(), self._pending)
        except BlockingIOError:
            return
        except OSError:  # ssh is gone (a broken pipe): nothing more to send
            written = len(self._pending)
        self._pending = self._pending[written:]
        if not self._pending:
            self._sel.unregister(self.stdin)

    def _started(self, found: Trailers) -> None:
        if self.spec.on_start is not None and found.pgid is not None:
            self.spec.on_start({"pgid": found.pgid, "start": found.start, "host": self.target})

    def _reap(self) -> None:
        self.proc.wait()
        self._ended = time.monotonic()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _check_clocks(self) -> None:
        now = time.monotonic()
        if self._pidfd is None and self._ended is None and self.proc.poll() is not None:
            self._reap()
        if self._ended is not None:
            return
        if self._exited_at is None and self._deadline is not None and now >= self._deadline \
                and self.stop_at is None:
            self.timed_out = True
            self._stop(interrupt=False)
        if self.stop_at is not None:
            if now >= self.stop_at + self.spec.grace + STOP_SLACK:
                self.cut_off = True
                self._kill_ssh(signal.SIGKILL)
        elif self._exited_at is not None and now >= self._exited_at + POST_EXIT_WAIT:
            # The command ended; what still holds the channel is a background process it
            # left. Stop reading, as the local executor does; it keeps running.
            self._kill_ssh(signal.SIGTERM)

    def _stop(self, *, interrupt: bool) -> None:
        if interrupt:
            self.interrupted = True
        if self.stop_at is not None:
            return
        self.stop_at = time.monotonic()
        # End-of-file on the wrapper's stdin is the stop request.
        if self._pending:
            self._pending = self._pending[len(self._pending):]
            with contextlib.suppress(KeyError):
                self._sel.unregister(self.stdin)
        with contextlib.suppress(OSError):
            self.stdin.close()

    def _kill_ssh(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _finished(self) -> bool:
        # Once ssh is gone its pipes end too, unless a process it started (a ProxyCommand)
        # still holds them: that is not waited for long.
        if self._ended is None:
            return False
        return not self._open or time.monotonic() >= self._ended + POST_EXIT_WAIT

    def _wait_time(self) -> float | None:
        now = time.monotonic()
        wakeups: list[float] = []
        if self._pidfd is None and self._ended is None:
            wakeups.append(0.05)
        if self._deadline is not None and self.stop_at is None and self._exited_at is None:
            wakeups.append(self._deadline - now)
        if self.stop_at is not None:
            wakeups.append(self.stop_at + self.spec.grace + STOP_SLACK - now)
        elif self._exited_at is not None:
            wakeups.append(self._exited_at + POST_EXIT_WAIT - now)
        if self._ended is not None:
            wakeups.append(self._ended + POST_EXIT_WAIT - now)
        return max(min(wakeups), 0.0) if wakeups else None

    def _close(self) -> None:
        if self._ended is None:
            # Leaving on an exception: cut ssh off; the wrapper on the host then sees its
            # stdin close and stops the command's group.
            self._kill_ssh(signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                self.proc.wait()
        if self._pidfd is not None:
            os.close(self._pidfd)
        self._sel.close()
        for pipe in (self.stdin, self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                pipe.close()

    # -- the outcome ------------------------------------------------------------------------

    def _exit(self, host: str, cwd: str | None, started: float) -> Exit:
        self._keep(self.trailers.flush(), self.err)
        found = self.trailers.found
        code, error, unreachable = self._outcome(found, host, cwd)
        if error and found.status is None:
            self.err.take(f"runbook: {error}\n".encode("utf-8", "replace"))
        self.out.finish()
        self.err.finish()
        return Exit(code=code, duration_ms=round((time.monotonic() - started) * 1000),
                    timed_out=self.timed_out, interrupted=self.interrupted,
                    error=one_line(error) if error else None, unreachable=unreachable)

    def _outcome(self, found: Trailers, host: str, cwd: str | None) -> tuple[int, str | None,
                                                                              bool]:
        if found.status is not None:
            return found.status, None, False
        last = _last_line(self._tail)
        if found.failure == "cwd":
            return NOT_STARTED, f"cannot start command on {host}: no directory {cwd!r}", False
        if found.failure == "setsid":
            return NOT_STARTED, (f"cannot start command on {host}: neither setsid nor perl "
                                 "is installed there to give it a process group"), False
        code = self.proc.returncode
        if self.stop_at is not None and found.pgid is None and not self.cut_off:
            # Stopped before the wrapper started the command: nothing ran.
            return 128 + signal.SIGTERM, f"stopped before the command started on {host}", \
                False
        if found.pgid is not None or self.stop_at is not None:
            how = "while stopping the command" if self.stop_at is not None \
                else "while the command ran"
            if self.cut_off:
                return CONNECTION_FAILED, (f"{host} did not confirm that the command "
                                           f"stopped; lost contact {how}"), True
            return CONNECTION_FAILED, _with_ssh(f"lost the connection to {host} {how}",
                                                last), True
        if code == CONNECTION_FAILED:
            return CONNECTION_FAILED, describe_failure(host, self._tail.decode(
                "utf-8", "replace")), True
        if code == 125:
            return code, _with_ssh(f"cannot start command on {host}: the wrapper received "
                                   "no command (does the ssh configuration set StdinNull?)",
                                   last), False
        return code, _with_ssh(f"cannot start command on {host}", last), False


# -- ssh's failures, for people ---------------------------------------------------------------

# The first match in ssh's stderr names the reason (ssh prints its reason last, but a host
# key warning banner comes before "Host key verification failed.").
_REASONS = (
    ("Host key verification failed", "host key verification failed (the host's key is not "
     "the one in known_hosts)"),
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "host key verification failed (the host's key "
     "changed)"),
    ("Permission denied", "authentication failed"),
    ("Too many authentication failures", "authentication failed"),
    ("Could not resolve hostname", "cannot resolve the host name"),
    ("Connection refused", "connection refused"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network unreachable"),
    ("timed out", "connection timed out"),
    ("Connection reset", "connection reset"),
    ("Connection closed", "connection closed by the host"),
    ("kex_exchange_identification", "connection closed by the host"),
    ("Can't open user config file", "cannot read the ssh configuration file"),
    ("Bad configuration option", "bad ssh configuration"),
    ("unknown configuration option", "bad ssh configuration"),
    ("terminating, ", "bad ssh configuration"),
)


def describe_failure(host: str, stderr: str) -> str:
    """One line: the host, why ssh could not connect, and ssh's own last line."""
    reason = next((why for needle, why in _REASONS if needle in stderr), "cannot connect")
    return _with_ssh(f"cannot connect to {host}: {reason}", _last_line(stderr))


def one_line(text: str, limit: int = 400) -> str:
    """`text` on one line of printable characters (a host's banner cannot inject terminal
    escapes into our messages), cut short."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _with_ssh(message: str, last: str) -> str:
    return f"{message} (ssh: {last})" if last else message


def _last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = one_line(lines[-1], 200)
    return last[len("ssh: "):] if last.startswith("ssh: ") else last


def _widen_pipe(fd: int) -> None:
    # 1 MiB pipes: large outputs arrive in 1 MiB reads (best effort, as locally).
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setsz, CHUNK)
