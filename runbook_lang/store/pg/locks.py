"""One run at a time per runbook and `environment`, across machines (LANGUAGE.md §6.5, §12).

The lock is a PostgreSQL session-level advisory lock on a 64-bit key derived from the
runbook's stable id and the `environment` value: the same runbook started on two machines
takes the same lock, and a runner that dies releases it when its connection ends. The
holder writes a row saying who it is, so a refused run can name it; a row left by a session
that is gone is reported as a takeover, as the local lock does.

The process groups a run starts are recorded too, so that a machine other than the one they
run on sees that a killed run may have left commands running.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from ...dataclass import dataclass
from ...digest import sha256_hex
from ...errors import LockBusy
from ..base import stable_id  # noqa: F401 - part of this package's API
from .connection import load_psycopg, translate

if TYPE_CHECKING:
    import psycopg


def lock_key(runbook_id: str, environment: str | None) -> int:
    """The signed 64-bit advisory lock key of a runbook and environment.

    JSON keeps "no environment" and an empty one apart, and any id and environment text
    apart from each other.
    """
    text = json.dumps([runbook_id, environment], ensure_ascii=False)
    return int.from_bytes(bytes.fromhex(sha256_hex(text.encode())[:16]), "big", signed=True)


@dataclass
class PgLock:
    """A held run lock; `takeover` describes a stale holder that was replaced, if any."""

    conn: psycopg.Connection
    key: int
    takeover: dict | None

    def release(self) -> None:
        """Give the lock up (it also goes when the connection ends); twice is harmless."""
        if self.conn.closed:
            return
        psycopg = load_psycopg()
        try:
            self.conn.execute("SELECT runbook.unlock(%s)", (self.key,))
        except psycopg.Error as error:
            raise translate(error, "release the run lock", self.conn) from None


def try_lock(conn: psycopg.Connection, runbook_id: str, environment: str | None,
             run_id: str, holder: dict, patience: float = 1.0) -> PgLock:
    """Take the run lock on this connection's session, or raise LockBusy naming the holder.

    A holder writes its row just after taking the lock: a run refused in between waits up to
    `patience` seconds for it rather than name nobody.
    """
    psycopg = load_psycopg()
    key = lock_key(runbook_id, environment)
    try:
        row = conn.execute("SELECT runbook.try_lock(%s, %s, %s, %s, %s::jsonb)",
                           (key, runbook_id, environment, run_id, json.dumps(holder))).fetchone()
        result = row[0] if row else {}
        if result.get("acquired"):
            return PgLock(conn, key, _takeover(result.get("takeover")))
        deadline = time.monotonic() + patience
        found = holder_of(conn, key)
        while (found is None or "holder" not in found) and time.monotonic() < deadline:
            time.sleep(0.02)
            found = holder_of(conn, key) or found
    except psycopg.Error as error:
        raise translate(error, "take the run lock", conn) from None
    raise LockBusy(_describe(found))


def holder_of(conn: psycopg.Connection, key: int) -> dict | None:
    """The lock's holder as the store knows it, or None when nobody holds it."""
    row = conn.execute("SELECT runbook.lock_holder(%s)", (key,)).fetchone()
    return row[0] if row and row[0] is not None else None


def _takeover(previous: dict | None) -> dict | None:
    if not previous:
        return None
    return {**(previous.get("holder") or {}), "role": previous.get("role"),
            "found": "stale lock of a run that is gone"}


def _describe(found: dict | None) -> dict:
    """The holder in the shape LockBusy names (run_id, user, pid, host, since)."""
    if not found:
        return {}
    said = found.get("holder") or {}
    return {**said, "run_id": found.get("run_id") or said.get("run_id", "?"),
            "user": said.get("user") or found.get("role", "?"),
            "role": found.get("role"), "since": found.get("since", said.get("since", "?"))}


# ---------------------------------------------------------------------- process groups


def record_process(conn: psycopg.Connection, run_id: str, key: int, group: dict) -> int:
    """Record a process group a run started ({"pgid", "start", "host"}); returns its id."""
    psycopg = load_psycopg()
    try:
        row = conn.execute(
            "INSERT INTO runbook.processes (run_id, lock_key, host, pgid, start, recorded) "
            "VALUES (%s, %s, %s, %s, %s, now()) RETURNING id",
            (run_id, key, group["host"], group["pgid"], group["start"])).fetchone()
    except psycopg.Error as error:
        raise translate(error, "record a process group", conn) from None
    assert row is not None
    return int(row[0])


def process_ended(conn: psycopg.Connection, process_id: int) -> None:
    """Mark a recorded process group as ended (its command finished and the group is gone)."""
    psycopg = load_psycopg()
    try:
        conn.execute("UPDATE runbook.processes SET ended = now() WHERE id = %s AND ended IS NULL",
                     (process_id,))
    except psycopg.Error as error:
        raise translate(error, "record the end of a process group", conn) from None


def open_processes(conn: psycopg.Connection, key: int) -> list[dict]:
    """Process groups started under this lock whose end was never recorded, oldest first:
    what a killed run may have left running, on whichever host it ran."""
    psycopg = load_psycopg()
    try:
        cur = conn.execute(
            "SELECT id, run_id, host, pgid, start, recorded FROM runbook.processes "
            "WHERE lock_key = %s AND ended IS NULL ORDER BY id", (key,))
    except psycopg.Error as error:
        raise translate(error, "list the process groups of earlier runs", conn) from None
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

