"""`runbook ARGS…` inside the test process: `runbook_lang.cli.main(argv)` with everything a
real process would have of its own, and nothing left behind.

A real `runbook` process costs ~0.1 s to start (Python, our modules, the grammar); most tests
only need what the command prints, its exit code and the files it writes. `call_main` gives
them exactly that, byte for byte what the real process gives, at the cost of the work itself:

- stdout and stderr are fresh UTF-8 streams with the real process's error handlers
  (`surrogateescape` and `backslashreplace` under the C.UTF-8 locale `clean_env` sets), not
  terminals: no colour, and `os.get_terminal_size` fails as it does on a pipe, so argparse
  wraps its help at 80 columns whatever terminal runs pytest;
- stdin is /dev/null (`sys.stdin.isatty()` is false, as with `stdin=DEVNULL`);
- `os.environ` is exactly the given environment, the working directory the given one,
  `sys.argv` what the console script would see (the transcript records it), and the warning
  filters the interpreter's defaults rather than pytest's `error`;
- a `timeout` bounds the call as `subprocess.run(timeout=…)` bounds a process.

All of it is undone afterwards. What the command itself could leave behind in a long-lived
process (signal handlers, threads, open file descriptors, a changed working directory) is
checked after every call: a leak fails the test that caused it, naming what leaked.

`python -m pytest --real-processes` runs every call in a real process instead, as the suite
did before: slower, and the way to tell whether a failure is the harness's or the product's.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook_lang import cli

# What `python` starts with (the "Default Warning Filter" of the warnings documentation),
# in the order warnings.filters holds them: the user sees exactly these.
_DEFAULT_WARNING_FILTERS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, None),
    ("ignore", PendingDeprecationWarning, None),
    ("ignore", ImportWarning, None),
    ("ignore", ResourceWarning, None),
)


# Set by conftest.py from --real-processes.
REAL_PROCESSES = False


@dataclass(frozen=True)
class Captured:
    """What one in-process `runbook` call wrote and returned, as bytes."""

    exit_code: int
    stdout: bytes
    stderr: bytes


class CallTimedOut(BaseException):
    """The in-process call ran past its timeout.

    A BaseException, so that the command's own `except Exception` (its last line of defence
    against tracebacks) cannot turn it into an "internal error" exit code.
    """


def decode(data: bytes, errors: str = "strict") -> str:
    """Bytes as `subprocess.run(text=True)` returns them: UTF-8, universal newlines."""
    text = data.decode("utf-8", errors)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def call_main(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str],
              timeout: float | None = 60, program: str = "runbook") -> Captured:
    """Run `runbook ARGV…` in this process, in `cwd`, with exactly `env`.

    `program` is `sys.argv[0]` (the console script's path in a real process).
    """
    argv = [str(arg) for arg in argv]
    if REAL_PROCESSES:
        proc = subprocess.run([program, *argv], cwd=cwd, env=dict(env), capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        return Captured(proc.returncode, proc.stdout, proc.stderr)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    before = _state()
    with pytest.MonkeyPatch.context() as mp, open(os.devnull, encoding="utf-8") as stdin, \
            warnings.catch_warnings():
        for name in set(os.environ) - set(env):
            mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.chdir(cwd)
        mp.setattr(sys, "argv", [program, *argv])
        mp.setattr(sys, "stdin", stdin)
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        mp.setattr(os, "get_terminal_size", _not_a_terminal)
        warnings.resetwarnings()
        for action, category, module in reversed(_DEFAULT_WARNING_FILTERS):
            warnings.filterwarnings(action, category=category, module=module or "")
        with _deadline(timeout, argv):
            code = _exit_code(argv)
        out.flush()
        err.flush()
    # A command may change the working directory (resume goes where the run started): the
    # MonkeyPatch has put it back by now.
    _check_nothing_leaked(before, argv)
    return Captured(code, out.buffer.getvalue(), err.buffer.getvalue())


def _exit_code(argv: list[str]) -> int:
    """What the console script (`sys.exit(main())`) would exit with."""
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse: --help, usage errors
        code = stop.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    # sys.exit("text") prints the text and exits 1.
    sys.stderr.write(f"{code}\n")
    return 1


def _not_a_terminal(*args) -> os.terminal_size:
    raise OSError("not a terminal")  # what os.get_terminal_size says of a pipe


class _deadline:
    """SIGALRM after `timeout` seconds raises CallTimedOut in the call (main thread only)."""

    def __init__(self, timeout: float | None, argv: list[str]) -> None:
        self.timeout = timeout if threading.current_thread() is threading.main_thread() \
            else None
        self.argv = argv
        self.previous = None

    def _expired(self, signum, frame) -> None:
        raise CallTimedOut(f"runbook {' '.join(self.argv)}: still running after "
                           f"{self.timeout}s")

    def __enter__(self) -> None:
        if self.timeout:
            self.previous = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.timeout)

    def __exit__(self, *exc) -> None:
        if self.timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


@dataclass(frozen=True)
class _State:
    handlers: dict
    threads: frozenset
    fds: frozenset


# How long a test's own helpers (its HTTP server answering the command's last request) may
# take to close their side of what the command opened before a leftover counts as a leak.
_SETTLE = 2.0


def _state() -> _State:
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM,
                                                        signal.SIGALRM, signal.SIGCHLD,
                                                        signal.SIGPIPE)}
    return _State(handlers, frozenset(threading.enumerate()), frozenset(_open_fds()))


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:  # no /proc: fd leaks go unchecked
        return set()


def _check_nothing_leaked(before: _State, argv: list[str]) -> None:
    command = f"runbook {subprocess.list2cmdline(argv)}"
    deadline = time.monotonic() + _SETTLE
    while (leaks := _leaks(before)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not leaks, f"{command} left behind: " + "; ".join(leaks)


def _leaks(before: _State) -> list[str]:
    after = _state()
    found = []
    changed = [sig.name for sig, handler in before.handlers.items()
               if after.handlers[sig] is not handler]
    if changed:
        found.append(f"signal handlers installed for {changed}")
    threads = [t.name for t in after.threads - before.threads if t.is_alive() and _ours(t)]
    if threads:
        found.append(f"threads running: {threads}")
    open_fds = {fd: _describe(fd) for fd in after.fds - before.fds}
    open_fds = {fd: what for fd, what in open_fds.items() if what is not None}
    if open_fds:
        found.append(f"file descriptors open: {open_fds}")
    return found


def _ours(thread: threading.Thread) -> bool:
    """A thread the command started: a real process would wait for it at exit (not a
    daemon), or its code is ours. The tests' servers run daemon threads of their own."""
    target = getattr(thread, "_target", None)
    modules = (type(thread).__module__, getattr(target, "__module__", None) or "")
    return not thread.daemon or any(m.startswith("runbook_lang") for m in modules)


def _describe(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # closed meanwhile
