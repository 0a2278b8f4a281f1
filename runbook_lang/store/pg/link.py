"""The runner's connection to a team store: batched writes, and reconnecting when it is lost.

A run writes through one `Link`. What it records is queued as statements and sent in one
round trip and one transaction at each point the contract asks for durability (`flush`):
before every step (a synchronous commit that moves the run's head), and, without waiting for
the disk, just before a command starts, so that other machines see what runs and which
process group it is. Every queued statement can be sent twice without effect (a record that
exists is skipped, a closed log is not touched), so a batch whose fate a lost connection
hides is simply sent again.

When the connection is lost (the server restarted, the network went away, an administrator
ended the session), the link reconnects with backoff for a bounded time (`RUNBOOK_STORE_RETRY`
seconds, default 30), runs its hooks (the run lock is taken again on the new session) and
sends the batch again. If the store stays unreachable, it raises `StoreLost`, a `RecordError`:
the interpreter stops the run there, nothing is recorded out of order, and the run can be
resumed once the store is back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import RecordError, StoreError
from .connection import connect, load_psycopg, redact, translate

if TYPE_CHECKING:
    import psycopg

DEFAULT_RETRY = 30.0  # seconds
MAX_PAUSE = 2.0  # the longest pause between two attempts to reconnect
LAZY = "SELECT set_config('synchronous_commit', 'off', true)"
SYNC = "SELECT records, hash FROM runbook.sync(%s)"


class StoreLost(RecordError):
    """The team store stayed unreachable (or the run lock went to another run meanwhile):
    the run stops where it is and can be resumed."""


def retry_seconds() -> float:
    """How long a lost connection is retried: RUNBOOK_STORE_RETRY (seconds), else 30."""
    text = os.environ.get("RUNBOOK_STORE_RETRY", "")
    try:
        value = float(text) if text else DEFAULT_RETRY
    except ValueError:
        return DEFAULT_RETRY
    return max(0.0, min(value, 3600.0))


class Link:
    """One session with the store, reconnected when lost; a queue of statements to send.

    Attributes: `conn` (the current connection), `lost` (the StoreLost that ended it, once
    the store stayed unreachable), `hooks` (called with each new connection).
    """

    def __init__(self, conn: psycopg.Connection, url: str, retry_for: float | None = None) -> None:
        self.conn, self.url = conn, url
        self.retry_for = retry_seconds() if retry_for is None else retry_for
        self.hooks: list[Callable[[psycopg.Connection], None]] = []
        self.queue: list[tuple[str, tuple]] = []
        self.lost: StoreLost | None = None
        self.reconnects = 0

    # ------------------------------------------------------------------ sending

    def enqueue(self, sql: str, params: tuple) -> None:
        """A statement sent with the next flush."""
        self.queue.append((sql, params))

    def flush(self, durable: bool, run_id: str | None = None) -> tuple[int, str] | None:
        """Send the queue in one transaction. `durable`: a synchronous commit that moves the
        head of `run_id` (returns its record count and hash); else a commit that does not
        wait for the server's disk. Raises RecordError (StoreLost when unreachable)."""
        if not self.queue and not (durable and run_id):
            return None
        batch = list(self.queue)

        def send(conn: psycopg.Connection) -> tuple[int, str] | None:
            head = None
            with conn.pipeline():
                with conn.transaction():
                    if not durable:
                        conn.execute(LAZY, prepare=True)
                    for sql, params in batch:
                        conn.execute(sql, params, prepare=True)
                    if durable and run_id:
                        head = conn.execute(SYNC, (run_id,), prepare=True)
            row = head.fetchone() if head is not None else None
            return (int(row[0]), str(row[1])) if row and row[0] is not None else None

        try:
            result = self.run("record the run", send)
        except StoreError as error:
            if isinstance(error, RecordError):
                raise
            raise RecordError(f"the store refused the run's record: {error}") from None
        del self.queue[:len(batch)]
        return result

    def run(self, doing: str, action: Callable[[psycopg.Connection], Any]) -> Any:
        """`action(conn)`; after a lost connection, reconnect and do it again (it must be
        safe to repeat). Other database errors become a StoreError saying what failed."""
        if self.lost is not None:
            raise self.lost
        psycopg = load_psycopg()
        try:
            return action(self.conn)
        except psycopg.Error as error:
            if not self.is_lost():
                raise translate(error, doing, self.conn) from None
            cause = _first_line(str(error))
        return self._recover(doing, action, cause)

    def is_lost(self) -> bool:
        """Whether the current connection is gone (rather than a statement refused)."""
        return bool(self.conn.closed or self.conn.broken)

    def _recover(self, doing: str, action: Callable, cause: str) -> Any:
        psycopg = load_psycopg()
        deadline = time.monotonic() + self.retry_for
        pause = 0.1
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.lost = StoreLost(
                    f"lost the connection to the store {redact(self.url)} ({cause}) and it "
                    f"stayed unreachable for {self.retry_for:g}s: the run stops here, safely "
                    "(everything before was recorded in order)")
                raise self.lost
            time.sleep(min(pause, left))
            pause = min(pause * 2, MAX_PAUSE)
            try:
                conn = connect(self.url, timeout=max(2, int(min(left, 10))))
            except StoreError as error:
                cause = str(error).split(": ", 1)[-1]
                continue
            self._replace(conn)
            try:
                for hook in self.hooks:
                    hook(conn)
                return action(conn)
            except StoreLost as error:
                self.lost = error
                raise
            except psycopg.Error as error:
                if not self.is_lost():
                    raise translate(error, doing, conn) from None
                cause = _first_line(str(error))
            except StoreError as error:
                if not self.is_lost():
                    raise
                cause = str(error)

    def _replace(self, conn: psycopg.Connection) -> None:
        old, self.conn = self.conn, conn
        self.reconnects += 1
        try:
            old.close()
        except Exception:  # noqa: BLE001 - the old connection is gone either way
            pass

    def close(self) -> None:
        """Close the connection (which also frees any lock it holds)."""
        self.conn.close()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "connection lost"
