"""Writing a run into the team store: records on the chain, output logs in chunks.

`PgRunWriter` writes the very lines `TranscriptWriter` writes to `transcript.jsonl` (same
fields, same order, same JSON encoding, same masking), one row each, so an export is the same
transcript byte for byte and `verify` checks it offline. The database checks each row's seq
and prev as it arrives; the writer only keeps its own count to build the next line.

Durability mirrors the local store. By default (`appends="lazy"`) `append` commits each
record at once but lets the server flush it to disk lazily (`synchronous_commit = off` for
that commit): like the local `write(2)` without `fsync`, it survives the runner's death, and
other machines see it at once. `sync` flushes everything so far with a synchronous commit and
moves the run's head: like the local `fsync` and `head` file. After a crash of the database
server itself, records appended since the last sync may be lost, never reordered: the chain
stays whole up to its head.

Two other policies: `"durable"` commits every append synchronously (a disk flush each), and
`"batched"` keeps appends in memory and sends them with the sync, in one round trip and one
transaction (cheapest; but until the sync nobody else sees them, and a runner that dies
loses them).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from ...errors import StoreError
from ..chain import ZERO, Mask, RecordEncoder, identity
from .connection import load_psycopg, translate

if TYPE_CHECKING:
    import psycopg

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
CHUNK = 256 * 1024  # bytes per output chunk row: large rows, yet little lost if a run dies

# A write that commits without waiting for the disk, in one statement (one round trip): the
# setting is local to the statement's own transaction. `sync` waits for all of them at once.
LAZY = "(SELECT set_config('synchronous_commit', 'off', true)) AS lazy"
INSERT_RECORD = ("INSERT INTO runbook.records (run_id, seq, prev, line, hash, event, written) "
                 "SELECT %s, %s, %s, %s, '', '', now()")


APPENDS = ("lazy", "durable", "batched")
SYNC = "SELECT records FROM runbook.sync(%s)"


class PgRunWriter:
    """Appends events to a run in the team store, each line chained to the one before.

    Attributes: `run_id`, `head` (SHA-256 hex of the last line appended), `seq` (the next
    record's number). `appends` is the durability policy of appends (see the module).
    """

    def __init__(self, conn: psycopg.Connection, run_id: str, seq: int = 0, head: str = ZERO,
                 mask: Mask = identity, appends: str = "lazy") -> None:
        if appends not in APPENDS:
            raise ValueError(f"appends must be one of {', '.join(APPENDS)}")
        self.conn, self.run_id, self.seq, self.head = conn, run_id, seq, head
        self._records = RecordEncoder(run_id, mask)
        self._mask = self._records.mask
        self._appends = appends
        self._pending: list[tuple[str, int, str, bytes]] = []
        self._closed = False

    def append(self, event: str, **fields: object) -> dict:
        """Write one event and return its record (with `fields` masked)."""
        record, line = self._records.record(self.seq, self.head, event, fields)
        self.append_line(line)
        return record

    def append_line(self, line: bytes) -> None:
        """Write one already encoded line (its seq and prev must be the next ones: the
        database refuses anything else)."""
        if self._closed:
            raise ValueError("the run's writer is closed")
        params = (self.run_id, self.seq, self.head, line)
        if self._appends == "batched":
            self._pending.append(params)
        else:
            sql = INSERT_RECORD if self._appends == "durable" else f"{INSERT_RECORD} FROM {LAZY}"
            self._write(f"append record {self.seq} of run {self.run_id}",
                        lambda: self.conn.execute(sql, params, prepare=True))
        self.head = hashlib.sha256(line).hexdigest()
        self.seq += 1

    def _write(self, doing: str, action) -> None:
        psycopg = load_psycopg()
        try:
            action()
        except psycopg.errors.UniqueViolation:
            raise StoreError(f"refused by the store: a record of run {self.run_id} is already "
                             "written (is another runner writing this run?)") from None
        except psycopg.Error as error:
            raise translate(error, doing, self.conn) from None

    def sync(self) -> None:
        """Make every appended record durable and point the run's head at the last one."""
        if self._closed or self.seq == 0:
            return
        if not self._pending:
            self._write(f"sync run {self.run_id}",
                        lambda: self.conn.execute(SYNC, (self.run_id,), prepare=True))
            return
        pending, self._pending = self._pending, []

        def send() -> None:
            # One round trip: the records and the head in one transaction, or none of them.
            with self.conn.pipeline(), self.conn.transaction():
                for params in pending:
                    self.conn.execute(INSERT_RECORD, params, prepare=True)
                self.conn.execute(SYNC, (self.run_id,), prepare=True)

        try:
            self._write(f"append records {pending[0][1]}-{pending[-1][1]} of run "
                        f"{self.run_id}", send)
        except StoreError:
            self._closed = True  # the chain the writer holds is no longer the store's
            raise

    def close(self) -> None:
        """Sync and stop writing; closing twice is harmless. The connection stays open."""
        if not self._closed:
            self.sync()
            self._closed = True

    def log_names(self, seq: int, step: str) -> tuple[str, str]:
        """The stdout and stderr log names (`output/…`) for the command recorded at `seq`:
        the names the local store gives the files."""
        if self._mask is not None:
            step = self._mask(step)
        stem = f"output/{seq:05d}-{_UNSAFE.sub('_', step)}"
        return f"{stem}.stdout.log", f"{stem}.stderr.log"

    def open_log(self, name: str) -> PgLog:
        """A new output log of this run, written in chunks (see `PgLog`)."""
        return PgLog(self.conn, self.run_id, name)


class PgLog:
    """One output stream of a command, stored as chunks; a `Sink` (`take`, `finish`).

    The database refuses chunks out of order and, on `finish`, a size or SHA-256 that does
    not match the chunks it holds. `size` and `sha256` are known once finished.
    """

    def __init__(self, conn: psycopg.Connection, run_id: str, name: str,
                 chunk: int = CHUNK) -> None:
        self.conn, self.run_id, self.name, self._chunk = conn, run_id, name, chunk
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._n = 0
        self.size = 0
        self.sha256: str | None = None
        self._run("open output log", "INSERT INTO runbook.outputs (run_id, path, opened) "
                  f"SELECT %s, %s, now() FROM {LAZY}", (run_id, name))

    def _run(self, doing: str, sql: str, params: tuple) -> None:
        psycopg = load_psycopg()
        try:
            self.conn.execute(sql, params, prepare=True)
        except psycopg.Error as error:
            raise translate(error, f"{doing} {self.name} of run {self.run_id}", self.conn) from None

    def take(self, chunk: bytes) -> None:
        """Append output; a full chunk goes to the store at once."""
        self._digest.update(chunk)
        self.size += len(chunk)
        self._buffer += chunk
        while len(self._buffer) >= self._chunk:
            self._flush(bytes(self._buffer[:self._chunk]))
            del self._buffer[:self._chunk]

    write = take

    def _flush(self, data: bytes) -> None:
        self._run("write output log", "INSERT INTO runbook.output_chunks (run_id, path, n, data) "
                  f"SELECT %s, %s, %s, %s FROM {LAZY}", (self.run_id, self.name, self._n, data))
        self._n += 1

    def finish(self) -> None:
        """Store what is left and close the log with its size and SHA-256; twice is harmless."""
        if self.sha256 is not None:
            return
        if self._buffer:
            self._flush(bytes(self._buffer))
            self._buffer.clear()
        digest = self._digest.hexdigest()
        self._run("close output log", "UPDATE runbook.outputs SET size = %s, sha256 = %s "
                  f"FROM {LAZY} WHERE run_id = %s AND path = %s",
                  (self.size, digest, self.run_id, self.name))
        self.sha256 = digest

    close = finish
