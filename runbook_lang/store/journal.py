"""Appending to one run directory of the local store: the chained transcript, the head
that says where it ends, its seal, and the output logs (LANGUAGE.md §9).

Directories are created 0700 and files 0600, or shared with a group (see `access`).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from ..errors import RecordError
from ..hints import TYPE_CHECKING
from .access import PRIVATE, Access, access_in, make_dir, open_file, write_file
from .chain import (
    COMMON,
    ZERO,
    Mask,
    RecordEncoder,
    anchor_text,
    identity,
    parse_line,
    sha,
    split_lines,
    torn_info,
)

if TYPE_CHECKING:
    from typing import Self

TRANSCRIPT = "transcript.jsonl"
HEAD = "head"
SEAL = "head.sig"
HEAD_WIDTH = 128
_RESERVED = frozenset(COMMON)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
def new_run_id(now: float | None = None) -> str:
    """A run id like ``20261129T161342123Z-3f9a1c``: UTC start to the millisecond, then 6
    random hex digits.

    The fixed-width timestamp first makes lexicographic order equal start-time order, also
    for runs started within the same second.
    """
    moment = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(moment))
    millis = int(moment * 1000) % 1000
    # os.urandom is what secrets.token_hex reads; importing `secrets` costs a run ~10 ms.
    return f"{stamp}{millis:03d}Z-{os.urandom(3).hex()}"


class FileRunWriter:
    """Appends events to ``RUN_DIR/transcript.jsonl``, each line chained to the one before.

    ``append`` writes each line with one ``write(2)`` on an ``O_APPEND`` descriptor, so a
    line reaches the file whole or (after a crash mid-write) as a torn tail; it does not
    fsync, which keeps it cheap. ``sync`` makes everything so far durable and moves ``head``.
    Attributes: ``run_dir``, ``run_id``, ``head`` (SHA-256 hex of the last line written),
    ``last_seq`` (its seq; -1 before the first).
    """

    def __init__(self, run_dir: Path, run_id: str, mask: Mask = identity) -> None:
        run_dir = Path(run_dir)
        # Private, or shared with the group of a setgid runs folder (see `access`).
        access = access_in(run_dir.parent)
        make_dir(run_dir, access)
        make_dir(run_dir / "output", access)
        # O_EXCL: a fresh run must never append to (and so break) another run's chain.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        fd = open_file(run_dir / TRANSCRIPT, flags, access)
        self._setup(run_dir, run_id, mask, fd, 0, ZERO, access)

    def _setup(self, run_dir: Path, run_id: str, mask: Mask, fd: int, seq: int, head: str,
               access: Access) -> None:
        self.run_dir, self.run_id, self.head = run_dir, run_id, head
        self.access = access
        self._fd: int | None = fd
        # The head anchor is rewritten in place after every fsync: one small write, no new
        # file and rename per step (that doubled the cost of recording a step).
        self._head_fd = open_file(run_dir / HEAD, os.O_WRONLY | os.O_CREAT, access)
        self._seq = seq
        self._records = RecordEncoder(run_id, mask)
        self._mask = self._records.mask
        self._synced = seq - 1  # the last record known to be on disk

    @classmethod
    def reopen(cls, run_dir: Path, mask: Mask = identity) -> tuple[Self, dict | None]:
        """Continue an existing run's chain (for resume), cutting off a torn last line.

        Returns the writer and ``{'bytes': n, 'sha256': hex}`` of what was cut, or None.
        """
        run_dir = Path(run_dir)
        path = run_dir / TRANSCRIPT
        lines, torn = split_lines(path.read_bytes())
        if torn is not None:
            os.truncate(path, sum(len(line) + 1 for line in lines))
        first, last = (parse_line(lines[0]), parse_line(lines[-1])) if lines else (None, None)
        run_id = first.get("run_id", run_dir.name) if first else run_dir.name
        seq = last["seq"] + 1 if last and isinstance(last.get("seq"), int) else len(lines)
        access = access_in(run_dir)
        make_dir(run_dir / "output", access)
        writer = cls.__new__(cls)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        writer._setup(run_dir, run_id, mask, fd, seq, sha(lines[-1]) if lines else ZERO, access)
        return writer, torn_info(torn)

    @property
    def last_seq(self) -> int:
        """The seq of the last record written (-1 before the first)."""
        return self._seq - 1

    def append(self, event: str, **fields: object) -> dict:
        """Write one event and return its record (with ``fields`` masked)."""
        if self._fd is None:
            raise ValueError("transcript is closed")
        record, line = self._records.record(self._seq, self.head, event, fields)
        data = memoryview(line + b"\n")
        try:
            while data:  # a regular file takes it in one go; loop for the rare short write
                data = data[os.write(self._fd, data):]
        except OSError as error:
            raise RecordError(cannot("write the transcript", self.run_dir, error)) from None
        self.head = sha(line)
        self._seq += 1
        return record

    def sync(self) -> None:
        """Make all appended lines durable, then point the ``head`` anchor at the last one."""
        if self._fd is None or self._seq - 1 == self._synced:
            return  # nothing appended since the last sync
        try:
            # fdatasync: the data and the size that makes it readable, not the mtime.
            os.fdatasync(self._fd)
        except OSError as error:
            raise RecordError(cannot("sync the transcript", self.run_dir, error)) from None
        self._synced = self._seq - 1
        # Written only after the sync, so the anchor never names a line that could be lost.
        # Fixed width, so each write covers the last one whole (JSON ignores the padding).
        anchor = anchor_text(self._seq - 1, self.head)
        try:
            os.pwrite(self._head_fd, (anchor.ljust(HEAD_WIDTH - 1) + "\n").encode(), 0)
        except OSError as error:
            raise RecordError(cannot("write the head file", self.run_dir, error)) from None

    def abandon(self) -> None:
        """Close without writing anything more (the record cannot be written)."""
        for fd in (self._fd, self._head_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = None

    def close(self) -> None:
        """Sync and close; closing twice is harmless."""
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            os.close(self._head_fd)
            self._fd = None

    def seal(self, signed: str) -> None:
        """Keep the signature over the current head (``head.sig``), replacing the last one;
        called after ``close``."""
        try:
            write_file(self.run_dir / SEAL, signed.encode("utf-8"), self.access)
        except OSError as error:
            raise RecordError(cannot("write the head's seal", self.run_dir, error)) from None

    def output(self, seq: int, step: str, stream: str) -> tuple[FileLog, str]:
        """The log of one stream of the command recorded at ``seq`` in ``step``, and its
        path relative to the run directory (as the record names it)."""
        path = self.output_path(seq, step, stream)
        return FileLog(path, self.access), f"output/{path.name}"

    def output_path(self, seq: int, step: str, stream: str) -> Path:
        """Where the log of one stream of the command recorded at ``seq`` in ``step`` goes."""
        # A `for` step's name holds its item, which may be a secret: file names are masked
        # like everything else the run writes.
        if self._mask is not None:
            step = self._mask(step)
        return self.run_dir / "output" / f"{seq:05d}-{_UNSAFE.sub('_', step)}.{stream}.log"


class FileLog:
    """One output log file, written as the command's output arrives."""

    def __init__(self, path: Path, access: Access = PRIVATE) -> None:
        self.path = path
        try:
            self._fd: int | None = self._open(path, access)
        except FileNotFoundError:
            # The run's output folder is made with the run; this is for one removed since.
            try:
                make_dir(path.parent, access)
                self._fd = self._open(path, access)
            except OSError as error:
                raise RecordError(cannot("create output log", path, error)) from None
        except OSError as error:
            raise RecordError(cannot("create output log", path, error)) from None

    @staticmethod
    def _open(path: Path, access: Access) -> int:
        # A log is a new file of this run (named by its record's seq): no stat first, one
        # open and one fchmod per stream on the hot path of every command.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     access.file_mode)
        with contextlib.suppress(OSError):
            os.fchmod(fd, access.file_mode)
        return fd

    def write(self, data: bytes) -> None:
        """Append bytes (all of them: a short write is continued)."""
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as error:
            raise RecordError(cannot("write output log", self.path, error)) from None

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def cannot(what: str, where: Path, error: OSError) -> str:
    """One line for a failed write: what, where, and the system's reason."""
    return f"cannot {what} in {where}: {error.strerror or error}"
