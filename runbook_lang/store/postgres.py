"""The team store behind the store seam: runs, records, decisions, seals and locks in
PostgreSQL (LANGUAGE.md §12), over the library in `pg/`.

Every command reaches a team store through `PostgresStore`, as it reaches the local
directory through `LocalStore`: the same records (the same bytes: an export verifies
offline), the same decisions, the same lock semantics across machines. What differs is who
people are: the store's `identity` is the database role of the connection (`session_user`),
which is the operator of a run and the approver of a decision, never a name the client
chooses.

A path given where a run is expected (an exported run directory, a transcript file) is read
from the files, so `verify DIR` works whatever `RUNBOOK_STORE` says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import LockBusy, RecordError, StoreError
from .base import LockKey, RunRef, RunSummary, Torn
from .chain import Mask, VerifyResult, anchor_text, parse_line, verify_chain
from .pg import locks as pglocks
from .pg.connection import redact
from .pg.link import Link
from .pg.runner import PgRunLock, PgWriter, this_host
from .pg.store import PgStore, rfc3339

RUNS = """
SELECT r.run_id, r.operator, r.started, s.line, f.line
  FROM runbook.runs r
  LEFT JOIN runbook.records s ON s.run_id = r.run_id AND s.seq = 0
  LEFT JOIN LATERAL (SELECT line FROM runbook.records x WHERE x.run_id = r.run_id
                      AND x.event = 'run_finished' ORDER BY seq DESC LIMIT 1) f ON true
 ORDER BY r.started DESC, r.run_id DESC"""
LOGS = """
SELECT o.path, coalesce(o.size, c.size), coalesce(o.sha256, c.sha256)
  FROM runbook.outputs o
  LEFT JOIN LATERAL (SELECT coalesce(sum(length(data)), 0) AS size,
                            encode(sha256(coalesce(string_agg(data, ''::bytea ORDER BY n),
                                                   ''::bytea)), 'hex') AS sha256
                       FROM runbook.output_chunks k
                      WHERE k.run_id = o.run_id AND k.path = o.path AND o.closed IS NULL) c
    ON true
 WHERE o.run_id = %s"""
DECISIONS = ("SELECT gate, approver, decision, reason, decided, host, method, client_id, "
             "statement, signature FROM runbook.decisions WHERE run_id = %s ORDER BY id")
DECIDE = ("SELECT approver FROM runbook.decide(%s, %s, %s, %s, %s, %s, %s, %s, %s)")


class PostgresStore:
    """A team store at a `postgresql://` URL (its password never shown)."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = redact(url)
        library = PgStore.open(url)
        self.link = Link(library.conn, url)
        self.identity: str | None = str(library.role)
        self._key: LockKey | None = None

    @property
    def lib(self) -> PgStore:
        """The library's view of the current connection."""
        return PgStore(self.link.conn, self.url)

    @property
    def lost(self) -> str | None:
        """Why the store could not be reached any more during a run (None: it could)."""
        return str(self.link.lost) if self.link.lost is not None else None

    def header(self, key: LockKey) -> dict:
        """What `run_started` records about where the run lives."""
        return {"store": {"kind": self.kind, "location": self.location,
                          "role": self.identity}, "runbook_id": key.stable_id or key.runbook_id}

    # ------------------------------------------------------------------ writing runs

    def create(self, run_id: str, snapshot: bytes, mask: Mask) -> PgWriter:
        """A new run row with its snapshot, then a writer at record 0."""
        key = self._key or LockKey(run_id, None)
        try:
            self.lib.create_run(run_id, key.stable_id or key.runbook_id,
                                key.runbook_id, snapshot, this_host())
        except StoreError as error:
            raise RecordError(str(error)) from None
        return PgWriter(self.link, run_id, mask=mask)

    def reopen(self, ref: RunRef, mask: Mask) -> tuple[PgWriter, Torn | None]:
        """A writer continuing the run's chain (a row is never torn)."""
        rows = self._rows(f"read run {ref.run_id}", "SELECT seq, hash FROM runbook.records "
                          "WHERE run_id = %s ORDER BY seq DESC LIMIT 1", (ref.run_id,))
        seq, head = (int(rows[0][0]) + 1, str(rows[0][1])) if rows else (0, "0" * 64)
        return PgWriter(self.link, ref.run_id, seq, head, mask), None

    # ------------------------------------------------------------------ reading runs

    def _rows(self, doing: str, sql: str, params: tuple = ()) -> list[tuple]:
        return self.link.run(doing, lambda conn: conn.execute(sql, params).fetchall())

    def _local(self):
        from .files import LocalStore

        return LocalStore()

    def resolve(self, ref: str) -> RunRef | None:
        """A run id in the store; else an exported run directory or transcript file."""
        if self.link.lost is not None:  # the end of a run that lost the store
            return RunRef(ref, f"{self.location} run {ref}")
        if self._rows("find a run", "SELECT 1 FROM runbook.runs WHERE run_id = %s", (ref,)):
            return RunRef(ref, f"{self.location} run {ref}")
        if os.sep in ref or Path(ref).suffix == ".jsonl" or Path(ref).is_dir():
            return self._local().resolve(ref)
        return None

    def runs(self) -> list[RunSummary]:
        """Every run in the store, from every machine, newest first."""
        out = []
        for run_id, role, started_at, first, last in self._rows("list runs", RUNS):
            started = parse_line(bytes(first)) if first is not None else None
            finished = parse_line(bytes(last)) if last is not None else None
            started, finished = started or {}, finished or {}
            duration = finished.get("duration_ms")
            out.append(RunSummary(
                run_id, started.get("runbook", "?"), finished.get("status", "unfinished"),
                started.get("time") or rfc3339(started_at) or "?",
                (started.get("operator") or {}).get("user") or role,
                duration if isinstance(duration, int) else None,
                f"{self.location} ({(started.get('operator') or {}).get('host', '?')})"))
        return out

    def _lines(self, ref: RunRef) -> list[bytes]:
        rows = self._rows(f"read run {ref.run_id}", "SELECT line FROM runbook.records "
                          "WHERE run_id = %s ORDER BY seq", (ref.run_id,))
        return [bytes(row[0]) for row in rows]

    def records(self, ref: RunRef) -> tuple[list[dict], Torn | None]:
        """The run's records, parsed (a row is never torn)."""
        if ref.path is not None:
            return self._local().records(ref)
        return [r for r in map(parse_line, self._lines(ref)) if r is not None], None

    def verify(self, ref: RunRef, head: str | None = None) -> VerifyResult:
        """The checks `verify` makes of a run directory, made of the stored run: the same
        bytes, the head row as the head file, the logs' sizes and digests."""
        if ref.path is not None:
            return self._local().verify(ref, head)
        lines = self._lines(ref)
        data = b"".join(line + b"\n" for line in lines)
        synced = self._rows(f"read run {ref.run_id}", "SELECT records, hash FROM "
                            "runbook.heads WHERE run_id = %s", (ref.run_id,))
        anchor = anchor_text(int(synced[0][0]) - 1, str(synced[0][1])) if synced else None
        logs = {path: (int(size), str(digest)) for path, size, digest in self._rows(
            f"read the output logs of run {ref.run_id}", LOGS, (ref.run_id,))}
        return verify_chain(data, anchor, logs.get, snapshot=self.snapshot(ref),
                            expected_head=head)

    def snapshot(self, ref: RunRef) -> bytes | None:
        """The runbook as the run started it."""
        if ref.path is not None:
            return self._local().snapshot(ref)
        rows = self._rows(f"read run {ref.run_id}", "SELECT snapshot FROM runbook.runs "
                          "WHERE run_id = %s", (ref.run_id,))
        return bytes(rows[0][0]) if rows else None

    def seal(self, ref: RunRef) -> str | None:
        """The newest seal of the run (None: no stop was signed)."""
        if ref.path is not None:
            return self._local().seal(ref)
        rows = self._rows(f"read the seal of run {ref.run_id}", "SELECT signed FROM "
                          "runbook.seals WHERE run_id = %s ORDER BY id DESC LIMIT 1",
                          (ref.run_id,))
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ decisions

    def add_decision(self, ref: RunRef, decision: dict) -> None:
        """Decide through `runbook.decide`: the database records the connection's role as
        the approver and refuses a role the gate does not admit."""
        if decision.get("approver") != self.identity:
            raise StoreError(f"refused: this connection is role {self.identity}; it cannot "
                             f"record a decision as {decision.get('approver')}")
        self._rows(f"decide on gate {decision['gate']} of run {ref.run_id}", DECIDE, (
            ref.run_id, decision["gate"], "reject" if decision.get("reject") else "approve",
            decision.get("reason") or "", decision.get("host"),
            decision.get("method") or "approve-command", decision.get("statement"),
            decision.get("signature"), decision.get("id")))

    def decisions(self, ref: RunRef) -> list[dict]:
        """The decisions on the run's gates in the order made, as the local store keeps
        them (`approvals.jsonl`), each marked as the database role's."""
        if ref.path is not None:
            return self._local().decisions(ref)
        out = []
        for gate, approver, choice, reason, decided, host, method, ident, statement, \
                signature in self._rows(f"read the decisions of run {ref.run_id}", DECISIONS,
                                        (ref.run_id,)):
            line = {"gate": gate, "approver": str(approver), "reject": choice == "reject",
                    "reason": reason, "time": rfc3339(decided), "host": host,
                    "method": method, "id": ident, "identity": "database role"}
            if signature is not None:
                line.update(statement=statement, signature=signature)
            out.append(line)
        return out

    # ------------------------------------------------------------------ locks

    def lock(self, key: LockKey, holder: dict) -> PgRunLock:
        """Take the run lock for this session, or raise LockBusy naming the holder, or a
        process group a killed run left (checked here when it ran on this machine)."""
        self._key = key
        runbook_id = key.stable_id or key.runbook_id
        run_id = str(holder.get("run_id", ""))
        holder = {**holder, "pid": os.getpid(), "machine": this_host()}
        held = pglocks.try_lock(self.link.conn, runbook_id, key.environment, run_id, holder)
        lock = PgRunLock(self.link, held, runbook_id, key.environment, run_id, holder)
        try:
            check_left_groups(self, held.key)
        except BaseException:
            lock.release()
            raise
        return lock

    def close(self) -> None:
        """Close the connection (which frees any lock it holds)."""
        self.link.close()

    # ------------------------------------------------------------------ `runbook store`

    def export(self, ref: RunRef, dest: Path) -> Path:
        """The run as a local run directory at `dest`, byte for byte; `verify` checks it
        offline (see `pg.export`); with its seal and decisions as the local store keeps
        them."""
        from .access import PRIVATE, write_file
        from .files import DECISIONS as DECISIONS_FILE
        from .journal import SEAL

        exported = self.lib.export(ref.run_id, dest)
        decisions = self.decisions(ref)
        if decisions:
            text = "".join(json.dumps({k: v for k, v in d.items() if k != "identity"},
                                      ensure_ascii=False) + "\n" for d in decisions)
            write_file(exported / DECISIONS_FILE, text.encode(), PRIVATE)
        sealed = self.seal(ref)
        if sealed is not None:
            write_file(exported / SEAL, sealed.encode(), PRIVATE)
        return exported

    def clear_groups(self, ref: RunRef) -> list[dict]:
        """Record that the process groups a killed run left have ended (after a person
        checked); returns them."""
        rows = self._rows(f"record the end of the process groups of run {ref.run_id}",
                          "UPDATE runbook.processes SET ended = now() WHERE run_id = %s AND "
                          "ended IS NULL RETURNING host, pgid", (ref.run_id,))
        return [{"host": host, "pgid": pgid} for host, pgid in rows]


def check_left_groups(store: PostgresStore, key: int) -> None:
    """Refuse while a process group recorded under this lock by a run that is gone may still
    run. Groups of this machine are checked (an ended one is recorded as ended); a group on
    another machine cannot be: the refusal names it and how to proceed."""
    from ..executors.local import group_alive

    here = this_host()
    for group in pglocks.open_processes(store.link.conn, key):
        host, pgid = group["host"], group["pgid"]
        if host.startswith("ssh:"):
            continue  # a remote command ends with its connection, as in the local store
        if host == here and not group_alive(pgid, group["start"]):
            pglocks.process_ended(store.link.conn, group["id"])
            continue
        run = group["run_id"]
        if host == here:
            raise LockBusy({}, f"run {run} ended without stopping its command: process group "
                               f"{pgid} is still running on this machine ({here}); stop it "
                               f"(kill -TERM -{pgid}) or wait for it to end, then try again")
        raise LockBusy({}, f"run {run} ended without stopping its command: process group "
                           f"{pgid} on {host} may still be running, and this machine cannot "
                           f"check it; on {host}, stop it (kill -TERM -{pgid}) or wait for it "
                           f"to end, then run from {host} (which checks it), or record that it "
                           f"ended: runbook store clear {run}")
