"""The team store on PostgreSQL (LANGUAGE.md §12), as a library.

`PgStore` is the front door: connect, `init` the schema, create and reopen runs, append
records (the database checks the chain), write output logs, decide on gates through the
database, take the run lock, list runs from every machine and export a run as a local run
directory. psycopg is needed only once a store is used: `pip install 'runbook-lang[postgres]'`.
"""

from .connection import is_store_url, redact
from .locks import PgLock, lock_key, stable_id
from .store import Decision, PgStore, RunSummary
from .writer import PgLog, PgRunWriter

__all__ = ["Decision", "PgLock", "PgLog", "PgRunWriter", "PgStore", "RunSummary",
           "is_store_url", "lock_key", "redact", "stable_id"]
