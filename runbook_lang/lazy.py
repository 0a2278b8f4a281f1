"""Packages whose public names are imported with their modules on first use (PEP 562).

A package's `__init__` that imported every module it exports made each of its users pay for
all of them: `store.pg` for asking whether a text is a store URL, `trust` for one error
class. Such a package sets `__getattr__ = lazy.exports(__name__, globals(), HOME_OF)`.
"""

from __future__ import annotations

import importlib
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
