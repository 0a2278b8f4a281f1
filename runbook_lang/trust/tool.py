"""Running the OpenSSH tools: argv lists, a private scratch directory, a deadline, no prompts.

Every call of `ssh-keygen` or `ssh-add` goes through `run_tool`, which

- passes an argv list (never a shell string), so no name, path or reason is ever parsed by a
  shell;
- starts the tool in a session of its own, without a controlling terminal, with stdin from
  `/dev/null` unless data is piped in, and with `SSH_ASKPASS_REQUIRE=never`: ssh-keygen then
  cannot ask for a passphrase on the terminal, read one from our data, or pop up an askpass
  window; a key that needs one fails at once (the caller says to use an agent);
- bounds the call with a timeout and stops the whole process group when it passes;
- reads messages in the C locale, so the few that are interpreted stay stable.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..dataclass import dataclass
from .armor import PublicKey, parse_public_key
from .errors import SigningKeyError, SshKeygenMissing, ToolFailed

SIGN_TIMEOUT = 30.0  # a hardware key may wait for a touch
CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Completed:
    """The outcome of one tool call."""

    returncode: int
    stdout: str
    stderr: str


def program(name: str = "ssh-keygen") -> str:
    """The tool's path on PATH, or `SshKeygenMissing` saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise SshKeygenMissing(name)
    return found


def tool_env() -> dict[str, str]:
    """The tool's environment: ours (for SSH_AUTH_SOCK), minus every way to prompt."""
    env = dict(os.environ)
    env["SSH_ASKPASS_REQUIRE"] = "never"
    env.pop("SSH_ASKPASS", None)
    env["LC_ALL"] = "C"
    return env


def run_tool(argv: list[str], *, data: bytes | None = None, timeout: float,
             what: str) -> Completed:
    """Run `argv` with `data` on stdin; `ToolFailed` on a timeout or if it cannot start.

    `what` names the operation in messages ("signing", "verifying the signature").
    """
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tool_env(),
            start_new_session=True)
    except OSError as error:
        raise ToolFailed(f"{what}: cannot start {argv[0]}: {error.strerror}") from None
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        raise ToolFailed(f"{what}: {Path(argv[0]).name} did not finish within {timeout:g} s"
                         ) from None
    return Completed(proc.returncode, out.decode("utf-8", "replace"),
                     err.decode("utf-8", "replace"))


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the tool and anything it started (a FIDO helper), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


@contextmanager
def private_dir() -> Iterator[Path]:
    """A scratch directory only we can read (0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="runbook-sig-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(path: Path, content: str | bytes) -> Path:
    """Create `path` (0600, must not exist) with `content`."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(raw)
    return path


def agent_keys(timeout: float = CHECK_TIMEOUT) -> list[PublicKey]:
    """The public keys `ssh-agent` holds, in its order; `SigningKeyError` without an agent."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        raise SigningKeyError("no ssh-agent: SSH_AUTH_SOCK is not set (start one with "
                              "eval \"$(ssh-agent)\" and add your key with ssh-add)")
    done = run_tool([program("ssh-add"), "-L"], timeout=timeout,
                    what="listing the agent's keys")
    if done.returncode == 1 and "no identities" in done.stdout + done.stderr:
        return []
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise SigningKeyError("cannot reach ssh-agent at SSH_AUTH_SOCK="
                              f"{os.environ['SSH_AUTH_SOCK']}: "
                              f"{message[-1] if message else 'ssh-add failed'}")
    keys = [parse_public_key(line) for line in done.stdout.splitlines()]
    return [key for key in keys if key is not None]
