"""Where runs live: the interface every store implements, and the values it deals in.

A store keeps each run's hash-chained records (LANGUAGE.md §9), its output logs, a snapshot
of the runbook as it ran, the gate decisions made while it waited, and the lock that allows
one run at a time per runbook and environment. The commands reach runs only through a
`RunStore` chosen by `store_for`; they never know which kind they hold.

Implementations: `files.py` (a local `.runbook/` directory, the embedded default) and
`postgres.py` (a team store).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..dataclass import dataclass
from ..executors.streams import LogSink
from ..hints import Protocol
from .chain import VerifyResult

Mask = Callable[[str], str]


@dataclass(frozen=True)
class RunRef:
    """A run found in a store: its id, and where the store keeps it (for messages)."""

    run_id: str
    location: str
    # Local store only: the transcript file named on the command line (`verify PATH` checks
    # exactly that file).
    path: Path | None = None


@dataclass(frozen=True)
class RunSummary:
    """One line of `runbook history`."""

    run_id: str
    runbook: str
    status: str
    started: str
    operator: str
    duration_ms: int | None
    location: str = ""


@dataclass(frozen=True)
class LockKey:
    """What one-run-at-a-time is about: a runbook (its stable id) and an environment."""

    runbook_id: str
    environment: str | None
    # Shown to people: the runbook's file name.
    label: str = ""
    # The same runbook on every machine (LANGUAGE.md §12): a team store's lock is keyed by it
    # (the local store keys by `runbook_id`, the file's real path).
    stable_id: str = ""


@dataclass
class Torn:
    """A torn last line cut off when a run was reopened: its size and SHA-256."""

    bytes: int
    sha256: str

    def to_json(self) -> dict:
        return {"bytes": self.bytes, "sha256": self.sha256}


class RunWriter(Protocol):
    """Appends to one run's record."""

    run_id: str
    # The SHA-256 of the last record written.
    head: str

    @property
    def last_seq(self) -> int:
        """The seq of the last record written (-1 before the first)."""

    def append(self, event: str, **fields: object) -> dict:
        """Write one record (fields masked) and return it; durable only after `sync`."""

    def sync(self) -> None:
        """Make every record so far durable and move the head to the last one."""

    def output(self, seq: int, step: str, stream: str) -> tuple[LogSink, str]:
        """A log for one stream of the command recorded at `seq`, and the name the record
        gives it (relative to the run)."""

    def close(self) -> None:
        """Sync and release; closing twice is harmless."""

    def abandon(self) -> None:
        """Release without writing more: the record cannot be written (RecordError)."""

    def seal(self, signed: str) -> None:
        """Keep the operator's signature over the head (a `trust.Signed` as JSON text), after
        `close`, replacing the previous stop's: `RunStore.seal` returns it byte for byte."""


class RunLock(Protocol):
    """A held run lock."""

    # Who held the lock before, when a holder that died left its note: recorded.
    takeover: dict | None

    def note_process(self, info: dict) -> None:
        """A command's process group started (`{"pgid", "start", "host"}`): remembered
        until `clear_process`, so that a killed run's survivors block the next run."""

    def clear_process(self, info: dict) -> None:
        """That process group has ended."""

    def release(self) -> None:
        """Give the lock up (also happens when the process ends)."""


class RunStore(Protocol):
    """Where runs, their records, decisions and locks live."""

    # For messages: a directory or a database address without its password.
    location: str
    # Who uses the store, as the store itself knows it: a team store's database role
    # (`session_user`); None where the store cannot tell (the local directory).
    identity: str | None

    def header(self, key: LockKey) -> dict:
        """Fields `run_started` records about the store ({} for the local store, whose
        records stay as they were)."""

    def create(self, run_id: str, snapshot: bytes, mask: Mask) -> RunWriter:
        """Start the record of a new run, keeping a copy of the runbook as it runs."""

    def reopen(self, ref: RunRef, mask: Mask) -> tuple[RunWriter, Torn | None]:
        """Continue a run's record (resume), cutting off a torn last line."""

    def resolve(self, ref: str) -> RunRef | None:
        """A run given by id (or, for a local store, a run directory or transcript)."""

    def runs(self) -> list[RunSummary]:
        """Every run, newest first, as `runbook history` lists them."""

    def records(self, ref: RunRef) -> tuple[list[dict], Torn | None]:
        """The run's complete records, and its torn last line if any."""

    def verify(self, ref: RunRef, head: str | None = None) -> VerifyResult:
        """Check the run's chain, where its head says it ends, output logs and snapshot
        (LANGUAGE.md §9; `chain.verify_chain` does it over bytes) and, when given, that the
        last record's hash is `head` (kept elsewhere). Signatures are checked above the
        store (`engine.audit`)."""

    def snapshot(self, ref: RunRef) -> bytes | None:
        """The runbook as the run started it."""

    def seal(self, ref: RunRef) -> str | None:
        """The signature over the head at the run's last signed stop, as `RunWriter.seal`
        kept it; None when no stop was signed."""

    def add_decision(self, ref: RunRef, decision: dict) -> None:
        """Keep a gate decision made while the run waits (durably), exactly as given: a
        signed one carries its `statement` and `signature` strings, which must come back
        byte for byte, or the signature no longer verifies."""

    def decisions(self, ref: RunRef) -> list[dict]:
        """The decisions kept for the run, oldest first."""

    def lock(self, key: LockKey, holder: dict) -> RunLock:
        """Take the run lock now or raise `LockBusy` naming the holder (or a live process
        group left by a killed run)."""

    def close(self) -> None:
        """Release connections."""


def stable_id(runbook: Path, header_id: str | None = None) -> str:
    """A runbook's stable id: the header's `id` if it has one, else its path relative to the
    root of the git repository holding it (with `/`), else its absolute path."""
    if header_id:
        return header_id
    path = Path(runbook).resolve()
    for folder in path.parents:
        if (folder / ".git").exists():
            return path.relative_to(folder).as_posix()
    return path.as_posix()
