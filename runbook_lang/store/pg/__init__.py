"""The team store on PostgreSQL (LANGUAGE.md §12), as a library.

`PgStore` is the front door: connect, `init` the schema, create and reopen runs, append
records (the database checks the chain), write output logs, decide on gates through the
database, take the run lock, list runs from every machine and export a run as a local run
directory. psycopg is needed only once a store is used: `pip install 'runbook-lang[postgres]'`.
"""



from ...hints import TYPE_CHECKING
from ...lazy import exports

# Each name is imported from its module on first use: a local run asks only whether a URL
# names a store, and must not load the store's SQL to learn that it does not.
_HOME_OF = {"is_store_url": "connection", "redact": "connection", "PgLock": "locks",
            "lock_key": "locks", "stable_id": "locks", "Decision": "store", "PgStore": "store",
            "RunSummary": "store", "PgLog": "writer", "PgRunWriter": "writer"}

__all__ = ["Decision", "PgLock", "PgLog", "PgRunWriter", "PgStore", "RunSummary",
           "is_store_url", "lock_key", "redact", "stable_id"]


__getattr__ = exports(__name__, globals(), _HOME_OF)


if TYPE_CHECKING:
    from .connection import is_store_url, redact
    from .locks import PgLock, lock_key, stable_id
    from .store import Decision, PgStore, RunSummary
    from .writer import PgLog, PgRunWriter
