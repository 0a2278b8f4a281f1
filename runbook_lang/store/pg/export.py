"""Between the team store and a local run directory (LANGUAGE.md §9, §12).

`export_run` writes a run as the local store would have: `transcript.jsonl` (the stored
lines, byte for byte), `head`, `output/…`, `runbook.snapshot` and, when decisions were made
through the store, `approvals.jsonl`; `verify` then checks it offline. `import_run` does the
reverse for a run recorded locally, so a team can bring earlier runs into its store: the
database checks every line's chain as it arrives, so a tampered run is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import StoreError
from ..base import RunRef
from ..chain import anchor_text
from ..files import LocalStore
from ..journal import HEAD, HEAD_WIDTH, TRANSCRIPT
from .connection import load_psycopg, translate
from .writer import PgLog

if TYPE_CHECKING:
    from .store import PgStore

SNAPSHOT = "runbook.snapshot"
DECISIONS = "approvals.jsonl"


def _create(path: Path, data: bytes = b"") -> int:
    """A new file, 0600, refusing to overwrite anything; returns its descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if data:
        _write_all(fd, data)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def head_bytes(records: int, head: str) -> bytes:
    """The `head` file as `TranscriptWriter.sync` writes it (fixed width)."""
    anchor = anchor_text(records - 1, head)
    return (anchor.ljust(HEAD_WIDTH - 1) + "\n").encode()


def export_run(store: PgStore, run_id: str, dest: Path) -> Path:
    """Write run `run_id` as a run directory at `dest` (created 0700; must not exist or be
    empty). Everything comes from one consistent view of the store, also for a live run."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise StoreError(f"{dest} already exists and is not an empty directory")
    psycopg = load_psycopg()
    conn = store.conn
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = store.snapshot(run_id)
            dest.mkdir(mode=0o700, parents=True, exist_ok=True)
            (dest / "output").mkdir(mode=0o700, exist_ok=True)
            _export_records(conn, run_id, dest)
            head = store.head(run_id)
            os.close(_create(dest / HEAD, head_bytes(*head) if head else b""))
            os.close(_create(dest / SNAPSHOT, snapshot))
            _export_logs(conn, run_id, dest)
            decisions = store.decisions(run_id)
            if decisions:
                text = "".join(json.dumps(d.as_local()) + "\n" for d in decisions)
                os.close(_create(dest / DECISIONS, text.encode()))
    except psycopg.Error as error:
        raise translate(error, f"export run {run_id}", conn) from None
    return dest


def _export_records(conn, run_id: str, dest: Path) -> None:
    fd = _create(dest / TRANSCRIPT)
    try:
        expected = 0
        for seq, line in conn.cursor().stream(
                "SELECT seq, line FROM runbook.records WHERE run_id = %s ORDER BY seq",
                (run_id,)):
            if seq != expected:  # the database prevents it; an export never papers over it
                raise StoreError(f"run {run_id} lacks record {expected} in the store")
            _write_all(fd, bytes(line) + b"\n")
            expected += 1
        os.fsync(fd)
    finally:
        os.close(fd)


def _export_logs(conn, run_id: str, dest: Path) -> None:
    root = (dest / "output").resolve()
    paths = [row[0] for row in conn.execute(
        "SELECT path FROM runbook.outputs WHERE run_id = %s ORDER BY path", (run_id,))]
    for rel in paths:
        target = (dest / rel).resolve()
        if target.parent != root:  # the schema's CHECK allows no other; never trust it alone
            raise StoreError(f"run {run_id} has an output log outside output/: {rel!r}")
        fd = _create(target)
        try:
            for (data,) in conn.cursor().stream(
                    "SELECT data FROM runbook.output_chunks WHERE run_id = %s AND path = %s "
                    "ORDER BY n", (run_id, rel)):
                _write_all(fd, bytes(data))
        finally:
            os.close(fd)


def import_run(store: PgStore, run_dir: Path, runbook_id: str) -> str:
    """Copy a local run directory into the store; returns its run id.

    The run must verify locally first (a torn last line is left out, as resume would).
    """
    run_dir = Path(run_dir)
    checked = LocalStore().verify(RunRef(run_dir.name, str(run_dir), run_dir / TRANSCRIPT))
    bad = [p for p in checked.problems if "torn" not in p.reason]
    if bad or checked.records == 0:
        reason = bad[0].reason if bad else "it holds no record"
        raise StoreError(f"{run_dir} does not verify ({reason}); it is not imported")
    data = (run_dir / TRANSCRIPT).read_bytes()
    lines = data.split(b"\n")[:checked.records]
    started = json.loads(lines[0])
    operator = started.get("operator") or {}
    writer = store.create_run(started["run_id"], runbook_id, str(started.get("runbook", "")),
                              (run_dir / SNAPSHOT).read_bytes(), str(operator.get("host", "")))
    for line in lines:
        writer.append_line(line)
    output = run_dir / "output"
    for path in sorted(output.iterdir()) if output.is_dir() else []:
        log = PgLog(store.conn, writer.run_id, f"output/{path.name}")
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                log.take(chunk)
        log.finish()
    writer.close()
    return writer.run_id
