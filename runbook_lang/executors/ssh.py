"""The SSH executor: commands on a remote host through the system OpenSSH client.

One executor per host per run. `open()` starts a ControlMaster for the host: one
authenticated connection, in the background, with its socket in a private 0700 directory
of the run's own; every command then runs as a multiplexed session over it, and `close()`
ends it (`ssh -O exit`). Host keys are checked as the user's ssh configuration says; the
executor adds `BatchMode=yes` (never a prompt) and never turns checking off.

A command travels as described in `remote.py`: the ssh command line carries a fixed
wrapper, the command and its values go over stdin, and trailers on stderr report the
command's process group and its exit status. A timeout or `interrupt()` closes ssh's
stdin; the wrapper on the host then stops the command's whole process group (SIGTERM, then
SIGKILL after the grace period) and keeps the channel open until the group is gone, so that
`run()` returns only when nothing of the command is left on the host.

The master's own session is `cat >/dev/null` reading the master's stdin, a pipe from this
process: if this process dies without closing (kill -9), the pipe closes, the session ends
and the master exits once the last command's session is done, and each command's wrapper
sees its stdin close and stops its group. Nothing is left behind, on either side.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

from ..targets.connection import SshHost
from . import CommandSpec, Exit, Sink
from .remote import REMOTE_COMMAND, PayloadError, build_payload
from .sshsession import CommandSession, describe_failure, one_line

CONNECTION_FAILED = 255
NOT_STARTED = 127
# ssh appends ".XXXXXXXXXXXXXXXX" to a ControlPath while it creates the socket, and a
# socket path holds at most 104 bytes on some systems (108 on Linux).
_SOCKET_PATH_MAX = 104 - 17
_MASTER_SESSION = "exec cat >/dev/null"
_MASTER_EXIT_WAIT = 5.0


@lru_cache(maxsize=1)
def client_version(ssh: str = "ssh") -> tuple[int, int]:
    """The OpenSSH client's version, (major, minor); (0, 0) when it cannot be told."""
    try:
        proc = subprocess.run([ssh, "-V"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", proc.stderr + proc.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def control_directory() -> Path:
    """A new private (0700) directory for control sockets, with a short path."""
    base = tempfile.gettempdir()
    # The ControlPath must be short and must not need quoting in an ssh option.
    if len(base) > 40 or not re.fullmatch(r"[A-Za-z0-9/._-]+", base):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="rb-ssh-", dir=base))


class SshExecutor:
    """Runs commands on one host over ssh, through one multiplexed connection per run.

    `config_file` (`--ssh-config`, `RUNBOOK_SSH_CONFIG`) is given to ssh with `-F` and wins
    over a `-F` in the host's `ansible_ssh_common_args`. `control_dir` is the run's private
    socket directory (see `SshConnections`); without one the executor makes its own.
    `connect_timeout` bounds connecting (ssh's ConnectTimeout); `alive_interval` is how
    often the master checks that the host still answers (ServerAliveInterval, three misses
    end the connection).
    """

    def __init__(self, host: SshHost, *, config_file: str | None = None,
                 control_dir: Path | None = None, socket_name: str = "m",
                 connect_timeout: float = 30.0, alive_interval: float = 15.0,
                 ssh: str = "ssh") -> None:
        self.host = host
        self.target = f"ssh:{host.name}"
        self.config_file = config_file or host.config_file
        self.connect_timeout = connect_timeout
        self.alive_interval = alive_interval
        self.ssh = ssh
        self._own_dir = control_dir is None
        self._dir = control_dir
        self._socket_name = socket_name
        self._master: subprocess.Popen[bytes] | None = None
        self._failure: str | None = None  # why the last connection attempt failed
        self._failure_fresh = False  # that failure was not yet reported by run()
        self._stop_r, self._stop_w = os.pipe()
        os.set_blocking(self._stop_r, False)
        os.set_blocking(self._stop_w, False)
        self._closed = False

    # -- the connection ---------------------------------------------------------------------

    @property
    def control_path(self) -> Path:
        """The master's socket."""
        if self._dir is None:
            self._dir = control_directory()
        path = self._dir / self._socket_name
        if len(str(path)) > _SOCKET_PATH_MAX:
            raise OSError(f"control socket path too long for ssh: {path}")
        return path

    def open(self) -> None:
        """Connect: start the master (once; again only after it went away). A connection
        that fails is reported by the next `run()` as an unreachable host."""
        if self._closed:
            raise RuntimeError("the executor is closed")
        if self._master_alive():
            return
        self._failure = self._start_master()
        self._failure_fresh = self._failure is not None

    def _master_alive(self) -> bool:
        return self._master is not None and self._master.poll() is None \
            and self.control_path.exists()

    def base_args(self) -> list[str]:
        """The ssh arguments shared by the master, the commands and `-O exit`."""
        args = [self.ssh]
        if self.config_file:
            args += ["-F", self.config_file]
        args += ["-o", "BatchMode=yes", "-o", f"ControlPath={self.control_path}",
                 "-e", "none", "-o", "RemoteCommand=none"]
        if client_version(self.ssh) >= (8, 7):
            # A user's configuration must not take the wrapper's stdin away or fork it.
            args += ["-o", "StdinNull=no", "-o", "ForkAfterAuthentication=no",
                     "-o", "SessionType=default"]
        host = self.host
        if host.address:
            args += ["-o", f"HostName={host.address}"]
        if host.port:
            args += ["-p", str(host.port)]
        if host.user:
            args += ["-l", host.user]
        for name, value in host.options:
            args += ["-o", f"{name}={value}"]
        return args

    def _start_master(self) -> str | None:
        """Start the master and wait until its socket exists; the failure, or None."""
        self._stop_master()
        self._drain_stop()
        log_path = self.control_path.with_suffix(".log")
        args = [*self.base_args(), "-o", "ControlMaster=yes", "-o", "ControlPersist=no",
                "-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}",
                "-o", f"ServerAliveInterval={max(1, round(self.alive_interval))}",
                "-o", "ServerAliveCountMax=3", "-T", "--", self.host.name, _MASTER_SESSION]
        try:
            with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                      "wb") as log:
                self._master = subprocess.Popen(
                    args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                    start_new_session=True)
        except OSError as exc:
            return f"cannot start ssh for {self.host.name}: {exc.strerror or exc}"
        deadline = time.monotonic() + self.connect_timeout + 15
        pause = 0.002
        while True:
            if self.control_path.exists():
                return None
            code = self._master.poll()
            if code is not None:
                _close_stdin(self._master)
                self._master = None
                return describe_failure(self.host.name, _read_text(log_path))
            if self._stop_requested(pause) or time.monotonic() > deadline:
                interrupted = time.monotonic() <= deadline
                self._stop_master()
                if interrupted:
                    return f"interrupted while connecting to {self.host.name}"
                return (f"cannot connect to {self.host.name}: no connection after "
                        f"{self.connect_timeout:g}s")
            pause = min(pause * 2, 0.05)

    def _stop_requested(self, wait: float) -> bool:
        """Wait up to `wait` seconds for interrupt(); True if it came."""
        import select

        ready, _, _ = select.select([self._stop_r], [], [], wait)
        if ready:
            self._drain_stop()
            return True
        return False

    def _drain_stop(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._stop_r, 64):
                pass

    def close(self) -> None:
        """End the master (`ssh -O exit`) and remove the socket; harmless twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_master()
        finally:
            fds = (self._stop_r, self._stop_w)
            self._stop_w = -1  # interrupt() writes nothing from now on
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if self._own_dir and self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

    def _stop_master(self) -> None:
        master, self._master = self._master, None
        if self._dir is None:
            return
        if master is not None and master.poll() is None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([*self.base_args(), "-O", "exit", "--", self.host.name],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=_MASTER_EXIT_WAIT,
                               start_new_session=True)
        if master is not None:
            _close_stdin(master)
            try:
                master.wait(timeout=_MASTER_EXIT_WAIT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(master.pid, signal.SIGKILL)
                master.wait()
        for leftover in (self.control_path, self.control_path.with_suffix(".log")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    # -- commands ---------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop the command running now (on the host: its whole process group). Safe from a
        signal handler or another thread: it writes one byte to a pipe and nothing else."""
        fd = self._stop_w
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.write(fd, b"x")

    def run(self, spec: CommandSpec, out: Sink, err: Sink) -> Exit:
        """Run ``sh -c spec.command`` on the host with `spec.env` added to the login
        environment, in `spec.cwd` (relative to the login directory), stdin empty."""
        started = time.monotonic()
        self._drain_stop()  # an interrupt() from before this command is not for it
        if self._failure_fresh:
            self._failure_fresh = False
            return self._unreachable(self._failure or "", out, err, started)
        if not self._master_alive():
            self.open()
            self._failure_fresh = False
            if self._failure is not None:
                return self._unreachable(self._failure, out, err, started)
        try:
            payload = build_payload(spec.command, spec.env, spec.cwd, spec.grace)
        except PayloadError as exc:
            return _not_started(f"cannot start command: {exc}", out, err, started)
        args = self.command_args()
        try:
            session = CommandSession.spawn(args, payload, self._stop_r, spec, out, err,
                                           self.target)
        except OSError as exc:
            return _not_started(f"cannot start ssh: {exc.strerror or exc}", out, err, started)
        return session.supervise(self.host.name, spec.cwd, started)

    def command_args(self) -> list[str]:
        """The argument vector of every command: fixed text, the host name last but one."""
        return [*self.base_args(), "-o", "ControlMaster=no", "-T", "--", self.host.name,
                REMOTE_COMMAND]

    def _unreachable(self, error: str, out: Sink, err: Sink, started: float) -> Exit:
        interrupted = error.startswith("interrupted while connecting")
        err.take(f"runbook: {error}\n".encode("utf-8", "replace"))
        out.finish()
        err.finish()
        return Exit(code=130 if interrupted else CONNECTION_FAILED,
                    duration_ms=_ms_since(started), interrupted=interrupted,
                    error=one_line(error), unreachable=not interrupted)


class SshConnections:
    """The SSH side of one run: a private socket directory and one executor per host.

    `executor(host)` gives the same executor for the same host name; `close()` closes every
    executor (ending each master) and removes the directory. Usable as a context manager.
    """

    def __init__(self, *, config_file: str | None = None, connect_timeout: float = 30.0,
                 alive_interval: float = 15.0, ssh: str = "ssh") -> None:
        self.config_file = config_file
        self.connect_timeout = connect_timeout
        self.alive_interval = alive_interval
        self.ssh = ssh
        self.directory = control_directory()
        _raise_file_limit()
        self._executors: dict[str, SshExecutor] = {}
        self._lock = threading.Lock()  # hosts of a batch ask for their executors at once

    def executor(self, host: SshHost) -> SshExecutor:
        """The executor of `host` for this run (made on first use)."""
        with self._lock:
            found = self._executors.get(host.name)
            if found is None:
                found = SshExecutor(host, config_file=self.config_file,
                                    control_dir=self.directory,
                                    socket_name=f"h{len(self._executors)}",
                                    connect_timeout=self.connect_timeout,
                                    alive_interval=self.alive_interval, ssh=self.ssh)
                self._executors[host.name] = found
            return found

    def interrupt(self) -> None:
        """Stop the command running on every host (safe from a signal handler)."""
        for executor in tuple(self._executors.values()):
            executor.interrupt()

    def close(self) -> None:
        """Close every executor and remove the socket directory."""
        try:
            for executor in self._executors.values():
                executor.close()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SshConnections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_file_limit() -> None:
    """Each host holds three descriptors for the run (the master's stdin, the interrupt
    pipe): lift the soft limit to the hard one, as far as 65536, so that a run on some
    hundreds of hosts does not hit a default soft limit of 1024."""
    try:
        import resource
    except ImportError:  # not a Unix
        return
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _not_started(message: str, out: Sink, err: Sink, started: float) -> Exit:
    err.take(f"runbook: {message}\n".encode("utf-8", "replace"))
    out.finish()
    err.finish()
    return Exit(NOT_STARTED, _ms_since(started), error=one_line(message))


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes()[-8192:].decode("utf-8", "replace")
    except OSError:
        return ""


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
