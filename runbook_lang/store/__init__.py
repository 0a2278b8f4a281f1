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
           "close_stores", "redact_argv", "store_for", "store_holding", "store_url"]


# Team stores opened by this command: `close_stores` ends their sessions when it ends.
_OPENED: list[RunStore] = []


def close_stores() -> None:
    """Close every team store this command opened (their sessions, and any lock held)."""
    while _OPENED:
        try:
            _OPENED.pop().close()
        except Exception:  # noqa: BLE001 - a connection already gone is closed enough
            pass


def store_url(url: str | None = None) -> str | None:
    """The team store asked for: `--store URL`, else RUNBOOK_STORE; None for the local one."""
    import os

    return url or os.environ.get("RUNBOOK_STORE") or None


def store_for(url: str | None = None, transcript_dir: str | Path | None = None) -> RunStore:
    """The store a command works with: `url` (`--store`, else RUNBOOK_STORE) names a team
    store; without one, the local directory (`--transcript-dir`, else `.runbook/runs` under
    the working directory). Connecting to a team store fails here, before anything runs,
    with a StoreError naming it (without its password)."""
    url = store_url(url)
    if url:
        from .pg.connection import is_store_url, redact

        if not is_store_url(url):
            from ..errors import UsageError

            raise UsageError(f"--store {redact(url)}: expected a postgresql:// URL")
        from .postgres import PostgresStore

        store = PostgresStore(url)
        _OPENED.append(store)
        return store
    from .files import LocalStore

    return LocalStore(Path(transcript_dir) if transcript_dir else None)


def store_holding(ref: str, url: str | None = None) -> RunStore:
    """The store to read a run from: a run directory or transcript file on disk is read
    from the files (offline, whatever RUNBOOK_STORE says); a run id from `store_for`."""
    import os

    def on_disk() -> bool:
        try:
            return Path(ref).exists()
        except OSError:  # there, but not readable: the local store says why
            return True

    if store_url(url) and not (os.sep in ref or ref.endswith(".jsonl") or ref in (".", "..")
                               or on_disk()):
        return store_for(url)
    from .files import LocalStore

    return LocalStore()


def redact_argv(argv: list[str]) -> list[str]:
    """The command line as recorded: a store URL's password never reaches a record."""
    if not any("postgres" in arg for arg in argv):
        return list(argv)  # no store URL (the usual run): the team store's code stays unloaded
    from .pg.connection import is_store_url, redact

    out = []
    for arg in argv:
        if arg.startswith("--store="):
            arg = "--store=" + redact(arg[len("--store="):])
        elif is_store_url(arg):
            arg = redact(arg)
        out.append(arg)
    return out
