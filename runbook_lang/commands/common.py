"""What several commands share: finding the store an invocation works with."""

from __future__ import annotations

import os
from pathlib import Path

from ..store import RunStore, StoreSettings, store_for


def store_of(args) -> RunStore:
    """The store named by `--store` / RUNBOOK_STORE, or the local directory
    (`--transcript-dir`, else `.runbook/runs` here)."""
    url = getattr(args, "store", None) or os.environ.get("RUNBOOK_STORE") or None
    directory = getattr(args, "transcript_dir", None)
    return store_for(StoreSettings(url=url, transcript_dir=Path(directory) if directory
                                   else None))
