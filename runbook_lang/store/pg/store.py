"""The team store on PostgreSQL, as a library: runs, records, decisions, locks, export.

`PgStore` wraps one connection (one database session): the run lock it takes is held by
that session, so a runner that dies frees it. Every call either does what it says or raises
StoreError (or LockBusy) with a message for people; no password ever appears in one.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ...dataclass import asdict, dataclass
from ...errors import StoreError
from ..chain import ZERO, Mask, identity
from . import locks, schema
from .connection import connect, load_psycopg, translate
from .writer import PgRunWriter

if TYPE_CHECKING:
    import psycopg


def rfc3339(moment: datetime | None) -> str | None:
    """A database time as the transcript writes times: UTC, milliseconds, `Z`."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class RunSummary:
    """One run as `history` lists it, from any machine."""

    run_id: str
    runbook: str
    runbook_id: str
    status: str
    started: str
    operator: str
    host: str

    def as_json(self) -> dict:
        """The fields `history --output json` prints."""
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """A decision on a gate, as the database recorded it (approver = the deciding role)."""

    run_id: str
    gate: str
    decision: str
    reason: str
    decided: str
    host: str | None
    method: str
    approver: str
    signature: str | None

    @property
    def reject(self) -> bool:
        return self.decision == "reject"

    def as_local(self) -> dict:
        """The line the local store keeps in `approvals.jsonl` for this decision."""
        line = {"gate": self.gate, "approver": self.approver, "reject": self.reject,
                "reason": self.reason, "time": self.decided, "host": self.host,
                "method": self.method}
        if self.signature is not None:
            line["signature"] = self.signature
        return line


DECISION_COLUMNS = "run_id, gate, decision, reason, decided, host, method, approver, signature"


def _decision(row: tuple) -> Decision:
    run_id, gate, decision, reason, decided, host, method, approver, signature = row
    return Decision(run_id, gate, decision, reason, rfc3339(decided) or "", host, method,
                    approver, signature)


class PgStore:
    """A connection to a team store and what can be done with it."""

    def __init__(self, conn: psycopg.Connection, url: str) -> None:
        self.conn, self.url = conn, url

    @classmethod
    def connect(cls, url: str, timeout: int = 10) -> PgStore:
        """Connect without checking the schema (for `init`)."""
        return cls(connect(url, timeout=timeout), url)

    @classmethod
    def open(cls, url: str, timeout: int = 10) -> PgStore:
        """Connect and check that this tool can use the store's schema version."""
        store = cls.connect(url, timeout)
        try:
            schema.check_version(store.conn)
        except BaseException:
            store.close()
            raise
        return store

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (which also frees any lock it holds)."""
        self.conn.close()

    def _query(self, doing: str, sql: str, params: tuple = (),
               hint: str = "runbook_runner or runbook_approver") -> list[tuple]:
        psycopg = load_psycopg()
        try:
            return self.conn.execute(sql, params).fetchall()
        except psycopg.Error as error:
            raise translate(error, doing, self.conn, hint) from None

    @property
    def role(self) -> str:
        """The role this session logged in as: who the database says we are."""
        return str(self.conn.info.user)

    # ------------------------------------------------------------------ schema

    def init(self) -> tuple[int, int]:
        """Create or migrate the schema; (version before, version after)."""
        return schema.init(self.conn)

    # ------------------------------------------------------------------ runs and records

    def create_run(self, run_id: str, runbook_id: str, runbook_path: str, snapshot: bytes,
                   host: str, mask: Mask = identity, appends: str = "lazy") -> PgRunWriter:
        """Record a new run with the runbook as it runs; returns its writer (seq 0 next).

        `appends`: the writer's durability policy (see `PgRunWriter`)."""
        self._query(f"create run {run_id}",
                    "INSERT INTO runbook.runs (run_id, runbook_id, runbook_path, sha256, "
                    "snapshot, host) VALUES (%s, %s, %s, %s, %s, %s) RETURNING run_id",
                    (run_id, runbook_id, runbook_path, hashlib.sha256(snapshot).hexdigest(),
                     snapshot, host))
        return PgRunWriter(self.conn, run_id, mask=mask, appends=appends)

    def reopen(self, run_id: str, mask: Mask = identity, appends: str = "lazy") -> PgRunWriter:
        """A writer continuing an existing run's chain (for resume)."""
        self._require(run_id)
        rows = self._query(f"read run {run_id}", "SELECT seq, hash FROM runbook.records "
                           "WHERE run_id = %s ORDER BY seq DESC LIMIT 1", (run_id,))
        seq, head = (rows[0][0] + 1, rows[0][1]) if rows else (0, ZERO)
        return PgRunWriter(self.conn, run_id, seq, head, mask=mask, appends=appends)

    def _require(self, run_id: str) -> None:
        if not self._query(f"read run {run_id}", "SELECT 1 FROM runbook.runs WHERE run_id = %s",
                           (run_id,)):
            raise StoreError(f"the store has no run {run_id!r} (see runbook history)")

    def resolve(self, ref: str) -> str | None:
        """The run id `ref` names in this store, or None."""
        rows = self._query("find a run", "SELECT run_id FROM runbook.runs WHERE run_id = %s",
                           (ref,))
        return rows[0][0] if rows else None

    def runs(self, limit: int | None = None) -> list[RunSummary]:
        """Every run in the store, from every machine, newest first."""
        rows = self._query("list runs",
                           "SELECT run_id, runbook_path, runbook_id, status, started, operator, "
                           "host FROM runbook.runs ORDER BY started DESC, run_id DESC LIMIT %s",
                           (limit,))
        return [RunSummary(r[0], r[1], r[2], r[3], rfc3339(r[4]) or "", r[5], r[6])
                for r in rows]

    def records(self, run_id: str) -> list[bytes]:
        """The run's lines exactly as written (without newlines), in order."""
        self._require(run_id)
        rows = self._query(f"read run {run_id}", "SELECT line FROM runbook.records "
                           "WHERE run_id = %s ORDER BY seq", (run_id,))
        return [bytes(r[0]) for r in rows]

    def snapshot(self, run_id: str) -> bytes:
        """The runbook as the run started it."""
        rows = self._query(f"read run {run_id}",
                           "SELECT snapshot FROM runbook.runs WHERE run_id = %s", (run_id,))
        if not rows:
            raise StoreError(f"the store has no run {run_id!r} (see runbook history)")
        return bytes(rows[0][0])

    def head(self, run_id: str) -> tuple[int, str] | None:
        """(records, hash of the last) as of the run's last sync; None if never synced."""
        rows = self._query(f"read run {run_id}",
                           "SELECT records, hash FROM runbook.heads WHERE run_id = %s", (run_id,))
        return (int(rows[0][0]), rows[0][1]) if rows else None

    # ------------------------------------------------------------------ gates

    def approve(self, run_id: str, gate: str, *, reject: bool = False, reason: str = "",
                host: str | None = None, method: str = "approve-command",
                signature: str | None = None) -> Decision:
        """Decide on a gate the run waits at, as this session's role; the database records
        who and refuses a role the gate does not admit."""
        rows = self._query(f"decide on gate {gate} of run {run_id}",
                           f"SELECT {DECISION_COLUMNS} FROM runbook.approve(%s, %s, %s, %s, "
                           "%s, %s, %s)", (run_id, gate, "reject" if reject else "approve",
                                           reason, host, method, signature),
                           hint="runbook_approver")
        return _decision(rows[0])

    def decisions(self, run_id: str, gate: str | None = None) -> list[Decision]:
        """The decisions on a run's gates (or one gate's), in the order they were made."""
        rows = self._query(f"read the decisions of run {run_id}",
                           f"SELECT {DECISION_COLUMNS} FROM runbook.decisions WHERE run_id = %s "
                           "AND (%s::text IS NULL OR gate = %s) ORDER BY id",
                           (run_id, gate, gate))
        return [_decision(row) for row in rows]

    # ------------------------------------------------------------------ locks

    def lock(self, runbook_id: str, environment: str | None, run_id: str,
             holder: dict) -> locks.PgLock:
        """Take the run lock of a runbook and environment for this session, or raise
        LockBusy naming the holder."""
        return locks.try_lock(self.conn, runbook_id, environment, run_id, holder)

    # ------------------------------------------------------------------ export

    def export(self, run_id: str, dest: Path) -> Path:
        """Write the run as a local run directory at `dest` (see `export.export_run`)."""
        from .export import export_run

        return export_run(self, run_id, Path(dest))
