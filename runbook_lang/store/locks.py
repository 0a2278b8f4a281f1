"""One run at a time per runbook file and `environment` (LANGUAGE.md §6.5).

The lock is an `flock` on a file under `.runbook/locks/`: the kernel releases it when the
holder dies, so a crashed run never blocks the next one. The file also says who holds it,
so a refused run can name the holder, and a run that finds a dead holder's note records
the takeover.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LockBusy


@dataclass
class RunLock:
    """A held lock; `takeover` describes a stale holder that was replaced, if any."""

    path: Path
    fd: int
    takeover: dict | None

    def release(self) -> None:
        """Give the lock up (also happens when the process ends)."""
        try:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def lock_path(base: Path, runbook: Path, environment: str | None) -> Path:
    """`.runbook/locks/<file>-<env>-<hash>.lock`: readable, and unique per path and env."""
    key = f"{runbook.resolve()}\0{environment or ''}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", runbook.stem)
    env = re.sub(r"[^A-Za-z0-9_.-]", "_", environment) + "-" if environment else ""
    return base / "locks" / f"{stem}-{env}{digest}.lock"


def acquire(path: Path, holder: dict) -> RunLock:
    """Take the lock at once or raise LockBusy naming the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        previous = _holder_note(fd)
        os.close(fd)
        raise LockBusy(previous or {}) from None
    # A holder that ends normally clears its note; a note left behind belongs to a run that
    # died holding the lock (the kernel released the flock).
    previous = _read(fd)
    takeover = {**previous, "found": "stale lock of a run that is gone"} if previous else None
    note = {**holder, "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(note).encode(), 0)
    return RunLock(path, fd, takeover)


def _holder_note(fd: int, patience: float = 1.0) -> dict | None:
    """The note of the live holder. A holder writes it just after taking the flock, so a
    run refused in between waits a moment for it rather than name nobody."""
    deadline = time.monotonic() + patience
    while (note := _read(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return note


def _read(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 65536, 0)
        return json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None
