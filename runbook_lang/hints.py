"""The few parts of `typing` the package uses at run time, without importing `typing`.

Loading `typing` cost every `run` and `check` ~1.8 ms, for names that matter only to a type
checker. Modules take `TYPE_CHECKING` from here (type checkers treat any name
`TYPE_CHECKING` as true), import typing's names for annotations under it, and take the ones
that run as code from here: `Protocol` and `NamedTuple` as base classes, `dataclass_transform`
and `overload` as decorators. Type checkers see typing's own. At run time the decorators and
`Protocol` are what typing's are to a class or function that is never checked against them:
nothing; `NamedTuple` makes the class `collections.namedtuple` makes, as typing's does.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
    from typing import dataclass_transform as dataclass_transform
    from typing import overload as overload
else:

    class Protocol:
        """A structural type: its methods say what an implementation offers (no
        implementation needs to inherit from it)."""

        __slots__ = ()

    def dataclass_transform(**_kwargs):
        """Marks a decorator or base class that makes data classes (for type checkers)."""
        return lambda decorated: decorated

    def overload(function):
        """One typed signature of a function defined after it (for type checkers)."""
        return function

    class _NamedTupleType(type):
        def __new__(cls, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(cls, name, bases, namespace)
            from collections import namedtuple

            fields = tuple(namespace.get("__annotations__", ()))
            if any(field in namespace for field in fields):
                raise TypeError(f"{name}: a field with a default (not supported here)")
            made = namedtuple(name, fields, module=namespace["__module__"])
            for key, value in namespace.items():
                if key not in ("__module__", "__qualname__", "__annotations__"):
                    setattr(made, key, value)
            return made

    class NamedTuple(metaclass=_NamedTupleType):
        """A tuple with named fields, declared as a class with annotated fields (no
        defaults)."""
