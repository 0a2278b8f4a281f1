"""What is made on first use: a package's exports, a module's regular expressions.

A package's `__init__` that imported every module it exports made each of its users pay for
all of them: `store.pg` for asking whether a text is a store URL, `trust` for one error
class. Such a package sets `__getattr__ = lazy.exports(__name__, globals(), HOME_OF)`.

A module's regular expressions compiled at import cost every start ~1 ms, and a run of a
plain runbook uses a few of them (the shell lexer's, for one, only reads commands that are
more than plain words): `compile_later` gives one that compiles at its first use.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from .hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def exports(package: str, namespace: dict[str, Any],
            home_of: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`: a name is imported from its module
    (`home_of[name]`, relative to the package) on first use, then kept in `namespace`."""

    def __getattr__(name: str) -> Any:
        module = home_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    return __getattr__


def compile_later(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A regular expression compiled when first used; its methods are then the compiled
    pattern's own (as fast to call)."""
    return _LaterPattern(pattern, flags)  # type: ignore[return-value]


_METHODS = ("match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer",
            "pattern", "flags", "groups", "groupindex")


class _LaterPattern:
    def __init__(self, pattern: str, flags: int) -> None:
        self._source = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        # Only reached while a name is not in the instance's dict: before the first use.
        compiled = re.compile(*self._source)
        for method in _METHODS:
            self.__dict__[method] = getattr(compiled, method)
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"compile_later({self._source[0]!r})"
