"""The local store: one directory per run under `.runbook/runs/` (LANGUAGE.md §9).

Each run has a directory ``RUN_DIR`` holding ``transcript.jsonl``, ``output/`` (one log per
command stream), ``runbook.snapshot`` (the runbook as it ran), ``approvals.jsonl`` (gate
decisions made while it waited), ``head``, a small anchor file naming the seq and hash of the
last synced record, so that an edit of the last line (which no later ``prev`` covers) or a
cut-off tail is still detected, and ``head.sig``, the operator's signature over the head at
the last stop (LANGUAGE.md §13), when a signing key was given.

Directories are created 0700 and files 0600, or shared with a group (see `access`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..digest import bulk
from ..errors import RecordError, StoreError
from .access import access_in, open_file, reading, write_file
from .base import LockKey, RunRef, RunSummary, Torn
from .chain import VerifyResult, parse_line, split_lines, torn_info, verify_chain
from .journal import (
    HEAD,
    SEAL,
    TRANSCRIPT,
    FileLog,
    FileRunWriter,
    Mask,
    cannot,
    new_run_id,
)
from .locks import FileLock, lock_path

__all__ = ["DECISIONS", "SNAPSHOT", "FileLog", "FileRunWriter", "LocalStore", "new_run_id",
           "summarize"]

SNAPSHOT = "runbook.snapshot"
DECISIONS = "approvals.jsonl"


class LocalStore:
    """Runs kept as directories under `root` (default `.runbook/runs` here)."""

    def __init__(self, root: Path | None = None) -> None:
        # Without a folder given, a run id that is not here is also looked for in every
        # `.runbook/runs` under the repository, where `runbook history` finds runs.
        self.searches_repository = root is None
        self.root = Path(root) if root is not None else Path.cwd() / ".runbook" / "runs"
        self.location = str(self.root)
        self.identity: str | None = None

    def header(self, key: LockKey) -> dict:
        """Nothing: a local run's records say where they are by being there."""
        return {}

    def create(self, run_id: str, snapshot: bytes, mask: Mask) -> FileRunWriter:
        """Start a new run directory with the runbook's snapshot."""
        try:
            writer = FileRunWriter(self.root / run_id, run_id, mask)
            # A copy of the runbook as it ran: resume compares it step by step with the file.
            write_file(writer.run_dir / SNAPSHOT, snapshot, writer.access)
        except OSError as error:
            raise RecordError(cannot("create the run's record", self.root / run_id, error)) \
                from None
        return writer

    def reopen(self, ref: RunRef, mask: Mask) -> tuple[FileRunWriter, Torn | None]:
        """Continue a run's transcript (resume)."""
        writer, torn = FileRunWriter.reopen(self._dir(ref), mask)
        return writer, Torn(**torn) if torn else None

    def resolve(self, ref: str) -> RunRef | None:
        """A run id (under the root), a run directory, or a transcript file.

        A run directory whose transcript is gone still resolves (its head or snapshot says
        it was a run), so that `verify` can say the transcript is missing."""
        path = Path(ref)
        with reading("read the run", path):
            if path.is_file():
                return self._ref(path.parent, path)
            candidates = [path] if path.is_absolute() or os.sep in ref or ref in (".", "..") \
                else [path, self.root / ref]
            for candidate in candidates:
                if _is_run_dir(candidate):
                    return self._ref(candidate, candidate / TRANSCRIPT)
            if self.searches_repository and len(candidates) == 2:
                return self._elsewhere_in_repository(ref)
        return None

    def _elsewhere_in_repository(self, run_id: str) -> RunRef | None:
        from .discovery import find_runs_dirs

        for runs_dir in find_runs_dirs().runs_dirs:
            if runs_dir.resolve() != self.root.resolve() and _is_run_dir(runs_dir / run_id):
                return self._ref(runs_dir / run_id, runs_dir / run_id / TRANSCRIPT)
        return None

    def _ref(self, run_dir: Path, transcript: Path) -> RunRef:
        return RunRef(run_dir.name, str(run_dir), transcript)

    def _dir(self, ref: RunRef) -> Path:
        return Path(ref.location)

    def _transcript(self, ref: RunRef) -> Path:
        return ref.path if ref.path is not None else self._dir(ref) / TRANSCRIPT

    def runs(self) -> list[RunSummary]:
        """Every run under the root, newest first (run ids sort by start time)."""
        with reading("list the runs", self.root):
            if not self.root.is_dir():
                return []
            dirs = sorted((d for d in self.root.iterdir() if (d / TRANSCRIPT).is_file()),
                          key=lambda d: d.name, reverse=True)
        return [summarize(self._ref(d, d / TRANSCRIPT), self.records(
            self._ref(d, d / TRANSCRIPT))[0]) for d in dirs]

    def records(self, ref: RunRef) -> tuple[list[dict], Torn | None]:
        """Every complete, parseable record, and the torn tail if any (none without a
        transcript)."""
        path = self._transcript(ref)
        with reading("read the run's transcript", path):
            if not path.is_file():
                return [], None
            lines, torn = split_lines(path.read_bytes())
        info = torn_info(torn)
        return [r for r in map(parse_line, lines) if r is not None], Torn(**info) if info else None

    def verify(self, ref: RunRef, head: str | None = None) -> VerifyResult:
        """Check exactly the transcript named: chain, head file, snapshot, output logs, and
        the head hash kept elsewhere, if given."""
        from .chain import Problem

        path = self._transcript(ref)
        with reading("read the run", path):
            if not path.is_file():
                return VerifyResult(False, 0, None, [Problem(1, None, (
                    f"the transcript {path} is missing"))])
            run_dir = path.parent
            anchor = _read_text(run_dir / HEAD)
            return verify_chain(path.read_bytes(), anchor, lambda rel: _read_log(run_dir, rel),
                                snapshot=self.snapshot(self._ref(run_dir, path)),
                                expected_head=head)

    def snapshot(self, ref: RunRef) -> bytes | None:
        """The runbook as the run started it (None when the file is gone)."""
        path = self._dir(ref) / SNAPSHOT
        with reading("read the run's snapshot", path):
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None

    def seal(self, ref: RunRef) -> str | None:
        """The signature over the head at the run's last signed stop (None: never sealed)."""
        with reading("read the head's seal", self._dir(ref) / SEAL):
            return _read_text(self._dir(ref) / SEAL)

    def snapshot_path(self, ref: RunRef) -> Path:
        """Where the snapshot file is (for parsing it)."""
        return self._dir(ref) / SNAPSHOT

    def add_decision(self, ref: RunRef, decision: dict) -> None:
        """Append a decision to the run's `approvals.jsonl`, durably (shared with the run
        directory's group when the directory is)."""
        run_dir = self._dir(ref)
        line = (json.dumps(decision, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            with reading("record the decision", run_dir / DECISIONS):
                fd = open_file(run_dir / DECISIONS, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                               access_in(run_dir))
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as error:  # a full disk, a vanished directory
            raise StoreError(cannot("record the decision", run_dir, error)) from None

    def decisions(self, ref: RunRef) -> list[dict]:
        """The decisions kept for the run, oldest first (unreadable lines skipped)."""
        path = self._dir(ref) / DECISIONS
        with reading("read the run's decisions", path):
            if not path.exists():
                return []
            text = path.read_text(encoding="utf-8", errors="replace")
        out = []
        for line in text.splitlines():
            try:
                decision = json.loads(line)
            except ValueError:
                continue
            if isinstance(decision, dict) and isinstance(decision.get("gate"), str) and \
                    isinstance(decision.get("approver"), str):
                out.append(decision)
        return out

    def lock(self, key: LockKey, holder: dict) -> FileLock:
        """The run lock of this runbook and environment (an flock), or LockBusy."""
        return FileLock.acquire(lock_path(key), holder)

    def close(self) -> None:
        """Nothing to release."""


def _read_text(path: Path) -> str | None:
    """A small file's text; None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _read_log(run_dir: Path, rel: str) -> tuple[int, str] | None:
    path = run_dir / rel
    if not path.is_file():
        return None
    digest, size = bulk(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def summarize(ref: RunRef, records: list[dict]) -> RunSummary:
    """A run's line in `runbook history`, from its records."""
    started: dict = next((r for r in records if r.get("event") == "run_started"), {})
    finished: dict = next((r for r in reversed(records) if r.get("event") == "run_finished"),
                          {})
    duration = finished.get("duration_ms")
    return RunSummary(ref.run_id, started.get("runbook", "?"),
                      finished.get("status", "unfinished"),
                      started.get("time", "?"), (started.get("operator") or {}).get("user", "?"),
                      duration if isinstance(duration, int) else None, ref.location)


def _is_run_dir(path: Path) -> bool:
    """A folder that was a run: its transcript, head or snapshot is there."""
    return any((path / name).is_file() for name in (TRANSCRIPT, HEAD, SNAPSHOT))
