"""SHA-256 for what a run hashes as it goes: records, the runbook, lock keys, the grammar.

These are short texts, and `hashlib` loads OpenSSL on import (~2.5 ms of a ~50 ms start);
CPython's own SHA-256 loads in ~0.2 ms and gives the same digests, at a sixth of OpenSSL's
speed per byte: ~1 µs more for a record. Bulk data (output streams, log files, any text
over 64 KiB) goes through `bulk()`, hashlib's OpenSSL, imported when such data arrives.
"""

from __future__ import annotations

from .hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


try:
    from _sha256 import sha256 as _small  # type: ignore[import-not-found]
except ImportError:  # a Python built without its own hashes
    from hashlib import sha256 as _small

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# Past this size OpenSSL's speed per byte outweighs its load (a captured value recorded by
# digest can be megabytes).
SMALL = 1 << 16


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of a text, in hex (short texts without loading OpenSSL)."""
    if len(data) > SMALL:
        digest = bulk()
        digest.update(data)
        return str(digest.hexdigest())
    return str(_small(data).hexdigest())


def bulk() -> Any:
    """A new SHA-256 object for data of any size (OpenSSL's, the fastest per byte)."""
    import hashlib

    return hashlib.sha256()
