"""One run at a time per runbook file and `environment` (LANGUAGE.md §6.5), on one machine.

The lock is an `flock` on a file in one directory per user, `~/.runbook/locks/` (or
`RUNBOOK_LOCK_DIR`), keyed by the runbook's real path and the environment: so runs started
from any working directory meet the same lock, a runbook on a read-only mount can still be
locked, and nothing is written beside the runbook. The kernel releases an flock when its
holder dies, so a crashed run never blocks the next one.

The file also holds a note saying who holds it (so a refused run can name the holder) and
which command process groups the run has running: a run killed with `kill -9` leaves its
note behind, and the next run refuses to start while a group it names is still alive (it
could still be changing the system), and names it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from pathlib import Path

from ..digest import sha256_hex
from ..errors import LockBusy
from .access import access_in, open_file
from .base import LockKey


def lock_dir() -> Path:
    """`RUNBOOK_LOCK_DIR`, else `~/.runbook/locks`, else (no usable home) a private folder
    under the system's temporary directory."""
    if os.environ.get("RUNBOOK_LOCK_DIR"):
        return Path(os.environ["RUNBOOK_LOCK_DIR"])
    try:
        home = Path.home()
    except RuntimeError:
        home = None
    if home is not None and os.access(home, os.W_OK):
        return home / ".runbook" / "locks"
    import tempfile

    return Path(tempfile.gettempdir()) / f"runbook-{os.getuid()}" / "locks"


def lock_path(key: LockKey) -> Path:
    """`<lock dir>/<file>-<env>-<hash>.lock`: readable, and unique per runbook and env."""
    digest = sha256_hex(f"{key.runbook_id}\0{key.environment or ''}".encode())
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(key.label or key.runbook_id).stem)
    env = re.sub(r"[^A-Za-z0-9_.-]", "_", key.environment) + "-" if key.environment else ""
    return lock_dir() / f"{stem}-{env}{digest[:12]}.lock"


class FileLock:
    """A held lock; `takeover` describes a stale holder that was replaced, if any."""

    def __init__(self, path: Path, fd: int, note: dict, takeover: dict | None) -> None:
        self.path = path
        self.fd = fd
        self.note = note
        self.takeover = takeover
        self._length = 0  # of the note file: a note never shrinks it
        self._fixed: str | None = None  # the note's JSON without its process groups

    @classmethod
    def acquire(cls, path: Path, holder: dict) -> FileLock:
        """Take the lock at once or raise LockBusy naming the holder."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # 0600, or 0660 in a setgid group-writable lock folder a team shares (RUNBOOK_LOCK_DIR).
        fd = open_file(path, os.O_RDWR | os.O_CREAT, access_in(path.parent))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            previous = _holder_note(fd)
            os.close(fd)
            raise LockBusy(previous or {}) from None
        # A holder that ends normally clears its note; a note left behind belongs to a run
        # that died holding the lock (the kernel released the flock).
        previous = _read(fd)
        survivor = _live_group(previous)
        if survivor is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise LockBusy(previous or {}, _survivor_message(previous or {}, survivor))
        takeover = {**previous, "found": "stale lock of a run that is gone"} if previous else None
        note = {**holder, "pid": os.getpid(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        lock = cls(path, fd, note, takeover)
        os.ftruncate(fd, 0)  # the dead holder's note
        lock._write()
        return lock

    def note_process(self, info: dict) -> None:
        """Remember a running command's process group in the note (before it can outlive
        us)."""
        self.note.setdefault("processes", []).append(info)
        self._write()

    def clear_process(self, info: dict) -> None:
        """Forget a process group that has ended. The note on disk keeps naming it until the
        next command's group is noted or the lock is released: a group that has ended is
        never found alive (its pid, if reused, started later than its mark), so rewriting
        the note after every command would buy nothing."""
        groups = self.note.get("processes") or []
        if info in groups:
            groups.remove(info)

    def release(self) -> None:
        """Give the lock up (also happens when the process ends)."""
        try:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)

    def _write(self) -> None:
        data = self._text().encode()
        # Written over the old note in one write, padded to its length with blanks (JSON
        # ignores them): a reader never finds it empty, and no truncation per command.
        os.pwrite(self.fd, data.ljust(self._length), 0)
        self._length = max(self._length, len(data))

    def _text(self) -> str:
        """`json.dumps(self.note)`; only the process groups (the last key) change from one
        command to the next, so the rest is encoded once."""
        if self._fixed is None:
            self._fixed = json.dumps({k: v for k, v in self.note.items() if k != "processes"})
        processes = self.note.get("processes")
        if processes is None or len(self.note) < 2 or next(reversed(self.note)) != "processes":
            return json.dumps(self.note)
        return f'{self._fixed[:-1]}, "processes": {json.dumps(processes)}}}'


def _live_group(note: dict | None) -> dict | None:
    """The first process group of a dead holder's note that is still alive."""
    from ..executors.local import group_alive

    for info in (note or {}).get("processes") or []:
        if info.get("host", "local") == "local" and isinstance(info.get("pgid"), int) \
                and group_alive(info["pgid"], info.get("start")):
            return info
    return None


def _survivor_message(note: dict, group: dict) -> str:
    return (f"run {note.get('run_id', '?')} (by {note.get('user', '?')}, pid "
            f"{note.get('pid', '?')}) ended without stopping its command: process group "
            f"{group['pgid']} is still running; stop it (kill -TERM -{group['pgid']}) or wait "
            "for it to end, then try again")


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
