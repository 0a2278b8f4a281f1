"""Where a command runs: one small interface, with an implementation per kind of target.

An executor runs a `CommandSpec` and pours the command's two output streams, chunk by chunk,
into two `Sink`s. Everything else stays shared code above this seam, the same for every
target: checks and watches, step deadlines, masking, hashing and logging of output
(`streams.py`), recording in the transcript. The interpreter asks `executor_for` once per
step instance; it never knows which kind it holds.

Implementations: `local.py` (a process group on this machine) and `ssh.py` (a remote host
over the system OpenSSH client).
"""

from __future__ import annotations

from .base import CommandSpec, Executor, Exit, Sink

__all__ = ["CommandSpec", "Executor", "Exit", "Sink"]
