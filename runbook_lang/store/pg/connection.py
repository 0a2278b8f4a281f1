"""Connecting to a team store, and turning PostgreSQL's errors into messages for people.

psycopg is an optional dependency (`runbook-lang[postgres]`), imported only here and only
when a PostgreSQL store is used, so `runbook --version` and the local store never load it.
No message this module produces holds the password of the URL it was given.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from ...errors import StoreError
from ...hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    import psycopg

CONNECT_TIMEOUT = 10  # seconds; libpq counts it per host address tried
# SQLSTATE codes raised by the schema's own checks (class RB): their text is for people.
OWN_ERRORS = "RB"
INSTALL_HINT = "the PostgreSQL store needs psycopg: pip install 'runbook-lang[postgres]'"


def load_psycopg() -> Any:
    """The psycopg module, or a StoreError saying how to install it."""
    try:
        import psycopg
    except ImportError:
        raise StoreError(INSTALL_HINT) from None
    return psycopg


def is_store_url(text: str) -> bool:
    """Whether `text` names a PostgreSQL store (`postgresql://…` or `postgres://…`)."""
    return text.startswith(("postgresql://", "postgres://"))


def password_of(url: str) -> str | None:
    """The password part of a URL's user information, decoded, if any."""
    try:
        return unquote(urlsplit(url).password or "") or None
    except ValueError:
        return None


def redact(url: str) -> str:
    """The URL without its password (and without any `password=` query parameter)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            netloc = f"{userinfo.split(':', 1)[0]}@{hostport}"
        query = re.sub(r"(?i)(^|&)password=[^&]*", r"\1password=***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(the URL cannot be read)"


def scrub(text: str, url: str) -> str:
    """`text` with the URL's password (raw or decoded) replaced by `***`."""
    for secret in {password_of(url), _raw_password(url)} - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def _raw_password(url: str) -> str | None:
    match = re.match(r"^[a-z]+://[^:/@]*:([^@]*)@", url)
    return match.group(1) if match else None


def connect(url: str, *, timeout: int = CONNECT_TIMEOUT,
            application_name: str = "runbook") -> psycopg.Connection:
    """An autocommit connection to the store at `url`, with synchronous commits.

    Raises StoreError naming the store (without its password) and what went wrong: not
    reachable within `timeout` seconds, authentication refused, no such database.
    """
    psycopg = load_psycopg()
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=max(2, int(timeout)),
                               application_name=application_name)
    except psycopg.Error as error:
        raise StoreError(f"cannot connect to the store {redact(url)}: "
                         f"{_first_line(scrub(str(error), url))}") from None
    # Whatever the server's default: a record reported as synced must be on the server's disk.
    conn.execute("SET synchronous_commit = on")
    return conn


def _first_line(text: str) -> str:
    # libpq prefixes and indents; one plain line reads best after our own sentence.
    text = re.sub(r"^connection (failed|is bad): ", "", text.strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def translate(error: Exception, doing: str, conn: psycopg.Connection | None = None,
              hint: str = "runbook_runner or runbook_approver") -> StoreError:
    """A StoreError for a database error raised on `conn` while `doing` something.

    The schema's own refusals (SQLSTATE class RB) keep their text; privilege errors say
    which role lacks what (and `hint`, the group role that grants it); anything else says
    what failed and PostgreSQL's first line.
    """
    role = None
    if conn is not None:
        try:
            role = conn.info.user
        except Exception:  # noqa: BLE001 - only used to word the message
            role = None
    state = getattr(error, "sqlstate", None) or ""
    diag = getattr(error, "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(error)).strip()
    if state.startswith(OWN_ERRORS):
        return StoreError(f"refused by the store: {primary}")
    if state == "42501":  # insufficient_privilege
        who = f"role {role}" if role else "this role"
        return StoreError(f"{who} may not {doing}: {primary} (a team grants {hint}; "
                          "see docs/team.md)")
    if state in ("42P01", "3F000"):  # undefined_table, invalid_schema_name
        return StoreError("this database holds no runbook store: run `runbook store init` "
                          "as its owner")
    if state.startswith("08") or type(error).__name__ in ("OperationalError",
                                                          "InterfaceError"):
        return StoreError(f"lost the connection to the store while trying to {doing}: "
                          f"{_first_line(primary)}")
    return StoreError(f"could not {doing}: {_first_line(primary)}")
