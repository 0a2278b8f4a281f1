"""Where runs live: one interface for a run's record, its decisions and its lock.

A store keeps each run's hash-chained records (LANGUAGE.md §9), its output logs, a snapshot
of the runbook as it ran, the gate decisions made while it waited, and the lock that allows
one run at a time per runbook and environment. The commands reach runs only through a
`RunStore` chosen by `store_for`; they never know which kind they hold.

Implementations: `files.py` (a local `.runbook/` directory, the embedded default) and
`postgres.py` (a team store). The interface is in `base.py`.
"""

from __future__ import annotations

from pathlib import Path

from .base import LockKey, RunLock, RunRef, RunStore, RunSummary, RunWriter, Torn

__all__ = ["LockKey", "RunLock", "RunRef", "RunStore", "RunSummary", "RunWriter", "Torn",
           "store_for"]


def store_for(url: str | None = None, transcript_dir: str | Path | None = None) -> RunStore:
    """The store a command works with: `url` (`--store`, else RUNBOOK_STORE) names a team
    store; without one, the local directory (`--transcript-dir`, else `.runbook/runs` under
    the working directory)."""
    import os

    url = url or os.environ.get("RUNBOOK_STORE") or None
    if url and url.startswith(("postgresql://", "postgres://")):
        from ..errors import StoreError

        raise StoreError("the PostgreSQL store is not available in this version")
    if url:
        from ..errors import UsageError

        raise UsageError(f"--store {url}: expected a postgresql:// URL")
    from .files import LocalStore

    return LocalStore(Path(transcript_dir) if transcript_dir else None)
