"""A run recorded in the team store through the store seam: writer, output logs, run lock.

`PgWriter` writes the very lines the local `FileRunWriter` writes (same fields, order, JSON
encoding and masking), one row each, queued on the run's `Link` and sent at the durability
points (`sync` before each step and at every stop; lazily before a command starts). The
database checks every row's seq and prev as it arrives; after each sync the writer checks
that the head the database moved to is its own, so a second writer of the same run is
noticed at once.

`PgRunLock` is the run lock (a session advisory lock, `locks.try_lock`) plus the process
groups the run starts, recorded with the machine they run on so that any machine sees what a
killed run may have left running.
"""

from __future__ import annotations

import hashlib
import re
import socket

from ...errors import LockBusy, RecordError, StoreError
from ..chain import ZERO, Mask, RecordEncoder, identity
from . import locks
from .link import Link, StoreLost

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
CHUNK = 256 * 1024  # bytes of output per row; a full one is sent at once

# Each statement can be sent twice without effect (see link.py).
RECORD = ("INSERT INTO runbook.records (run_id, seq, prev, line, hash, event, written) "
          "VALUES (%s, %s, %s, %s, '', '', now()) ON CONFLICT (run_id, seq) DO NOTHING")
LOG_OPEN = ("INSERT INTO runbook.outputs (run_id, path, opened) VALUES (%s, %s, now()) "
            "ON CONFLICT (run_id, path) DO NOTHING")
LOG_CHUNK = ("INSERT INTO runbook.output_chunks (run_id, path, n, data) SELECT %s, %s, %s, %s "
             "WHERE NOT EXISTS (SELECT FROM runbook.outputs WHERE run_id = %s AND path = %s "
             "AND closed IS NOT NULL) ON CONFLICT (run_id, path, n) DO NOTHING")
LOG_CLOSE = ("UPDATE runbook.outputs SET size = %s, sha256 = %s WHERE run_id = %s AND "
             "path = %s AND closed IS NULL")
LOG_WHOLE = "SELECT runbook.log_whole(%s, %s, %s, %s, %s)"
GROUP_STARTED = ("INSERT INTO runbook.processes (run_id, lock_key, host, pgid, start, recorded) "
                 "SELECT %s, %s, %s, %s, %s, now() WHERE NOT EXISTS (SELECT FROM "
                 "runbook.processes WHERE run_id = %s AND host = %s AND pgid = %s AND "
                 "start = %s)")
GROUP_ENDED = ("UPDATE runbook.processes SET ended = now() WHERE run_id = %s AND host = %s "
               "AND pgid = %s AND start = %s AND ended IS NULL")
SEAL = "INSERT INTO runbook.seals (run_id, signed, records) VALUES (%s, %s, %s)"


def this_host() -> str:
    """The name this machine goes by in the store (process groups, lock holders)."""
    return socket.gethostname()


class PgWriter:
    """Appends a run's records to the team store (a `RunWriter`)."""

    def __init__(self, link: Link, run_id: str, seq: int = 0, head: str = ZERO,
                 mask: Mask = identity) -> None:
        self.link, self.run_id, self.head = link, run_id, head
        self._seq = seq
        self._synced = seq  # records the store's head covers
        self._records = RecordEncoder(run_id, mask)
        self._mask = self._records.mask
        self._closed = False

    @property
    def last_seq(self) -> int:
        """The seq of the last record written (-1 before the first)."""
        return self._seq - 1

    def append(self, event: str, **fields: object) -> dict:
        """Queue one record (fields masked) and return it; sent at the next flush."""
        if self._closed:
            raise ValueError("the run's writer is closed")
        if self.link.lost is not None:
            raise self.link.lost
        record, line = self._records.record(self._seq, self.head, event, fields)
        self.link.enqueue(RECORD, (self.run_id, self._seq, self.head, line))
        self.head = hashlib.sha256(line).hexdigest()
        self._seq += 1
        return record

    def sync(self) -> None:
        """Send everything queued with a synchronous commit and move the run's head."""
        if self._closed or self._seq == 0:
            return
        head = self.link.flush(True, self.run_id)
        if head is not None and head != (self._seq, self.head):
            raise RecordError(f"the store's record of run {self.run_id} ends at record "
                              f"{head[0] - 1}, not at this runner's record {self._seq - 1}: "
                              "another runner is writing this run")
        self._synced = self._seq

    def output(self, seq: int, step: str, stream: str) -> tuple[PgLog, str]:
        """The log of one stream of the command recorded at `seq`, and its name (the local
        store's file name under `output/`)."""
        if self._mask is not None:
            step = self._mask(step)
        name = f"output/{seq:05d}-{_UNSAFE.sub('_', step)}.{stream}.log"
        return PgLog(self.link, self.run_id, name), name

    def close(self) -> None:
        """Sync and stop writing; closing twice is harmless (the connection stays open)."""
        if not self._closed:
            self.sync()
            self._closed = True

    def abandon(self) -> None:
        """Stop writing without sending anything more."""
        self._closed = True
        self.link.queue.clear()

    def seal(self, signed: str) -> None:
        """Keep the operator's signature over the head just closed (newest row wins)."""
        try:
            self.link.run("keep the head's seal", lambda conn: conn.execute(
                SEAL, (self.run_id, signed, self._seq)))
        except StoreError as error:
            raise RecordError(str(error)) from None


class PgLog:
    """One output stream of a command: buffered, sent with the run's next flush (a full
    chunk at once, so memory stays bounded). A `LogSink`."""

    def __init__(self, link: Link, run_id: str, name: str) -> None:
        self.link, self.run_id, self.name = link, run_id, name
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._n = 0
        self._size = 0
        self._open = False

    def write(self, data: bytes) -> None:
        """Append output; raises RecordError when a full chunk cannot be stored."""
        self._digest.update(data)
        self._size += len(data)
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            while len(self._buffer) >= CHUNK:
                self._chunk(bytes(self._buffer[:CHUNK]))
                del self._buffer[:CHUNK]
            self.link.flush(False)

    def _chunk(self, data: bytes) -> None:
        self._opened()
        self.link.enqueue(LOG_CHUNK, (self.run_id, self.name, self._n, data, self.run_id,
                                      self.name))
        self._n += 1

    def _opened(self) -> None:
        if not self._open:
            self.link.enqueue(LOG_OPEN, (self.run_id, self.name))
            self._open = True

    def close(self) -> None:
        """The rest of the output and the log's size and SHA-256 go with the next flush."""
        if not self._open and self._size >= 0:
            # Nothing of it sent yet (the usual small log): open, store and close at once.
            self.link.enqueue(LOG_WHOLE, (self.run_id, self.name, bytes(self._buffer),
                                          self._size, self._digest.hexdigest()))
            self._buffer.clear()
            self._open = True
            self._size = -1
            return
        if self._buffer:
            self._chunk(bytes(self._buffer))
            self._buffer.clear()
        self._opened()
        if self._size >= 0:
            self.link.enqueue(LOG_CLOSE, (self._size, self._digest.hexdigest(), self.run_id,
                                          self.name))
            self._size = -1  # closing twice is harmless


class PgRunLock:
    """A held run lock in the team store (a `RunLock`)."""

    def __init__(self, link: Link, held: locks.PgLock, runbook_id: str,
                 environment: str | None, run_id: str, holder: dict) -> None:
        self.link, self.held = link, held
        self.runbook_id, self.environment = runbook_id, environment
        self.run_id, self.holder = run_id, holder
        self.takeover = held.takeover
        self.warning: str | None = None
        link.hooks.append(self._retake)

    def _retake(self, conn) -> None:
        """After a reconnect: the lock went with the old session; take it again, or stop."""
        try:
            self.held = locks.try_lock(conn, self.runbook_id, self.environment, self.run_id,
                                       self.holder, patience=0.5)
        except LockBusy as busy:
            raise StoreLost(f"the connection to the store was lost, and meanwhile "
                            f"{busy.describe().replace('another run holds', 'another run took')}"
                            ": this run stops here, safely") from None

    def _group(self, info: dict) -> tuple:
        # A local command's group is known to other machines by this machine's name.
        host = this_host() if info.get("host", "local") == "local" else str(info["host"])
        return host, int(info["pgid"]), str(info.get("start") or "")

    def note_process(self, info: dict) -> None:
        """Record a command's process group before it can outlive us, with the records so
        far (one round trip). Never raises: the command is already running; a failure is
        raised by the next record instead."""
        host, pgid, start = self._group(info)
        self.link.enqueue(GROUP_STARTED, (self.run_id, self.held.key, host, pgid, start,
                                          self.run_id, host, pgid, start))
        try:
            self.link.flush(False)
        except RecordError:
            pass

    def clear_process(self, info: dict) -> None:
        """That process group has ended (sent with the next flush)."""
        host, pgid, start = self._group(info)
        self.link.enqueue(GROUP_ENDED, (self.run_id, host, pgid, start))

    def release(self) -> None:
        """Give the lock up; harmless twice, and when the connection is gone."""
        if self._retake in self.link.hooks:
            self.link.hooks.remove(self._retake)
        if self.link.lost is not None or self.link.is_lost():
            return  # the lock went with the session
        try:
            if self.link.queue:
                self.link.flush(False)
            self.held.conn = self.link.conn
            self.held.release()
        except (StoreError, RecordError):
            pass  # closing the connection frees it too
