"""The team store's schema: versioned migrations, `init`, and the version check on connect.

Migrations are the files `migrations/NNNN_name.sql` shipped inside the package, applied in
order, each in the same transaction as the row that records it in `runbook.schema_version`.
`init` applies the ones a database lacks (a second `init` changes nothing); a database whose
schema is newer than this tool is refused, by `init` and by every other command, since an
older tool could write what the newer schema no longer accepts or read it wrongly.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ...dataclass import dataclass
from ...errors import StoreError
from ...version import __version__
from .connection import load_psycopg, translate

if TYPE_CHECKING:
    import psycopg

SCHEMA = "runbook"
# Concurrent `init`s take turns on this transaction lock (the key spells "rbinit").
INIT_LOCK = 0x7262696E6974
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS runbook;
CREATE TABLE IF NOT EXISTS runbook.schema_version (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  tool       text NOT NULL,
  applied    timestamptz NOT NULL DEFAULT clock_timestamp(),
  applied_by name NOT NULL DEFAULT session_user
);
"""


@dataclass(frozen=True)
class Migration:
    """One schema step: its version number, name and SQL text."""

    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this tool, in order; versions run 1, 2, 3 … without gaps."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("the packaged migrations are not numbered 1, 2, 3 …")
    return tuple(found)


def latest() -> int:
    """The schema version this tool writes and reads."""
    return len(migrations())


def current_version(conn: psycopg.Connection) -> int | None:
    """The database's schema version; None when it holds no store at all."""
    psycopg = load_psycopg()
    try:
        row = conn.execute("SELECT max(version) FROM runbook.schema_version").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        return None
    except psycopg.Error as error:
        raise translate(error, "read the store's schema version", conn) from None
    return row[0] if row and row[0] is not None else 0


def newer_message(found: int) -> str:
    return (f"the store's schema is version {found}, newer than this runbook "
            f"{__version__} knows (up to {latest()}): upgrade runbook-lang to use this store")


def check_version(conn: psycopg.Connection) -> int:
    """The schema version, if this tool can use it; StoreError otherwise."""
    found = current_version(conn)
    if found is None or found == 0:
        raise StoreError("this database holds no runbook store: run `runbook store init` "
                         "as its owner")
    if found > latest():
        raise StoreError(newer_message(found))
    if found < latest():
        raise StoreError(f"the store's schema is version {found}, older than this runbook "
                         f"{__version__} needs ({latest()}): run `runbook store init` as the "
                         "store's owner to migrate it")
    return found


def init(conn: psycopg.Connection) -> tuple[int, int]:
    """Create or migrate the store; returns (version before, version after).

    All in one transaction: a failed migration leaves the database as it was.
    """
    psycopg = load_psycopg()
    encoding = conn.execute("SHOW server_encoding").fetchone()
    if encoding is None or encoding[0] != "UTF8":
        raise StoreError(f"the store's database must use the UTF8 encoding, not "
                         f"{encoding[0] if encoding else 'unknown'}: CREATE DATABASE … "
                         "ENCODING 'UTF8' TEMPLATE template0")
    step = "create the schema"
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (INIT_LOCK,))
            # "already exists, skipping" notices say nothing a person needs.
            conn.execute("SET LOCAL client_min_messages = warning")
            conn.execute(BOOTSTRAP)
            before = current_version(conn) or 0
            if before > latest():
                raise StoreError(newer_message(before))
            for migration in migrations()[before:]:
                step = f"apply migration {migration.version} ({migration.name})"
                conn.execute(migration.sql)
                conn.execute("INSERT INTO runbook.schema_version (version, name, tool) "
                             "VALUES (%s, %s, %s)",
                             (migration.version, migration.name, __version__))
    except psycopg.errors.InsufficientPrivilege as error:
        raise StoreError(f"`store init` needs the database's owner (or a role with CREATE on "
                         f"it, and CREATEROLE unless the roles runbook_runner and "
                         f"runbook_approver exist): {step} failed: "
                         f"{error.diag.message_primary}") from None
    except psycopg.Error as error:
        raise translate(error, step, conn) from None
    return before, latest()
