"""`runbook store init|export|clear`: set up a team store, and take runs out of it (§12)."""

from __future__ import annotations

from pathlib import Path

from ..errors import EXIT_OK, StoreError, UsageError
from ..store import store_url


def _url(args) -> str:
    url = store_url(args.store)
    if not url:
        raise UsageError(f"runbook store {args.store_command}: give the team store with "
                         "--store postgresql://ROLE@HOST/DB (or set RUNBOOK_STORE)")
    from ..store.pg.connection import is_store_url, redact

    if not is_store_url(url):
        raise UsageError(f"--store {redact(url)}: expected a postgresql:// URL")
    return url


def run_store(args) -> int:
    """Entry point of `runbook store ACTION`."""
    return {"init": store_init, "export": store_export, "clear": store_clear}[
        args.store_command](args)


def store_init(args) -> int:
    """Create the schema and the group roles, or migrate them; a second run changes
    nothing; a newer schema is refused."""
    from ..store.pg import PgStore, redact

    url = _url(args)
    with PgStore.connect(url) as store:
        before, after = store.init()
        role = store.role
    where = redact(url)
    if before == after:
        print(f"the store at {where} is at schema version {after}; nothing to do")
    elif before == 0:
        print(f"created the store at {where}: schema version {after}, owned by {role}; "
              "group roles runbook_runner and runbook_approver")
        print("next: GRANT runbook_runner TO <people who run>; GRANT runbook_approver TO "
              "<people who approve> (see docs/team.md)")
    else:
        print(f"migrated the store at {where} from schema version {before} to {after}")
    return EXIT_OK


def store_export(args) -> int:
    """Write a run as a run directory; `runbook verify DIR` checks it offline."""
    from ..store import store_for
    from ..store.postgres import PostgresStore

    store = store_for(_url(args))
    assert isinstance(store, PostgresStore)  # _url accepts PostgreSQL URLs only
    try:
        ref = store.resolve(args.run_id)
        if ref is None or ref.path is not None:
            raise StoreError(f"the store has no run {args.run_id!r} (see runbook history "
                             "--store …)")
        dest = store.export(ref, Path(args.dir))
    finally:
        store.close()
    print(f"exported run {ref.run_id} to {dest}; check it with: runbook verify {dest}")
    return EXIT_OK


def store_clear(args) -> int:
    """Record that a killed run's process groups have ended, once a person checked."""
    from ..store.postgres import PostgresStore

    store = PostgresStore(_url(args))
    try:
        ref = store.resolve(args.run_id)
        if ref is None or ref.path is not None:
            raise StoreError(f"the store has no run {args.run_id!r}")
        cleared = store.clear_groups(ref)
    finally:
        store.close()
    if not cleared:
        print(f"run {ref.run_id} left no process group recorded as running")
    for group in cleared:
        print(f"recorded as ended: process group {group['pgid']} on {group['host']} "
              f"(run {ref.run_id})")
    return EXIT_OK
