"""Where the grammar and the stdlib live: inside the installed wheel, or beside the checkout."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    # The wheel carries grammars/ and stdlib/ inside the package; a checkout (or an editable
    # install) keeps them at the top of the repository.
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"runbook-lang is missing its {name}/ folder (looked in {_PACKAGE})")


def grammar_path() -> Path:
    """The Lark grammar of the runbook language."""
    return _find("grammars") / "runbook.lark"


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The grammar's text (read once)."""
    return grammar_path().read_text(encoding="utf-8")


def stdlib_dir() -> Path:
    """The folder of `std/NAME` modules."""
    return _find("stdlib")
