"""Data classes as `dataclasses` makes them, without its cost at start-up.

`dataclasses.dataclass` compiles four to six methods for every class as the class is
defined (`exec` of generated source), and importing `dataclasses` imports `inspect`: for
the ~50 classes a `runbook run` loads, ~22 ms of a ~100 ms start, paid before the first
step even when most classes are never built. This module gives the same classes for the
part of the API this package uses, at next to no cost per class:

- `@dataclass`, `@dataclass(frozen=True)`, `@dataclass(order=True)`, `@dataclass(eq=False)`;
- `field(default=…)`, `field(default_factory=…)`, `field(repr=False)`, `field(compare=False)`;
- `__post_init__`, inheritance (base fields first, a field redeclared keeps its place),
  `ClassVar` annotations left out, `__match_args__`;
- `fields`, `replace`, `asdict`, `is_dataclass` and `FrozenInstanceError`.

Behaviour is that of `dataclasses` for these: the `__init__` signature (positional or
keyword, defaults, a fresh value from each factory), `repr`, equality and ordering by the
compared fields of two instances of the same class, a hash for frozen classes and none for
mutable ones (unless the class defines `__hash__`), assignment refused on frozen instances
with FrozenInstanceError, a method the class body defines never replaced. Only `__init__`
is compiled, and only when the class is first built; the other methods are shared
functions that read the class's field list. (The first builds of a class bind their
arguments without compiling anything: most classes are built once or twice per run.)
"""

from __future__ import annotations

from collections.abc import Callable

from .hints import TYPE_CHECKING, dataclass_transform, overload

if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")


class FrozenInstanceError(AttributeError):
    """Assignment to, or deletion of, a field of a frozen instance."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field of a data class: its name, default or default factory, and whether it
    shows in `repr` and takes part in comparisons."""

    __slots__ = ("name", "default", "default_factory", "repr", "compare")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING,
                 repr: bool = True, compare: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare

    def __repr__(self) -> str:
        return (f"Field(name={self.name!r}, default={self.default!r}, "
                f"default_factory={self.default_factory!r}, repr={self.repr}, "
                f"compare={self.compare})")


def field(*, default: Any = MISSING, default_factory: Any = MISSING, repr: bool = True,
          compare: bool = True) -> Any:
    """Declare a field with a default, a default factory, or left out of repr/compare."""
    return Field(default, default_factory, repr, compare)


@overload
def dataclass(cls: type[T], /) -> type[T]: ...


@overload
def dataclass(*, eq: bool = True, order: bool = False,
              frozen: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def dataclass(cls: Any = None, /, *, eq: bool = True, order: bool = False,
              frozen: bool = False) -> Any:
    """Make a data class of `cls`: fields from its annotations, as `dataclasses.dataclass`."""

    def wrap(cls: type[T]) -> type[T]:
        return _process(cls, eq=eq, order=order, frozen=frozen)

    return wrap if cls is None else wrap(cls)


def fields(class_or_instance: Any) -> tuple[Field, ...]:
    """The fields of a data class or of an instance, in order."""
    try:
        return tuple(class_or_instance.__record_fields__.values())
    except AttributeError:
        raise TypeError("must be called with a dataclass type or instance") from None


def is_dataclass(obj: Any) -> bool:
    """Whether `obj` is a data class made here, or an instance of one."""
    cls = obj if isinstance(obj, type) else type(obj)
    return hasattr(cls, "__record_fields__")


def replace(obj: T, /, **changes: Any) -> T:
    """A new instance of `obj`'s class with `changes` applied to its fields."""
    names = obj.__record_fields__  # type: ignore[attr-defined]
    for name in changes:
        if name not in names:
            raise TypeError(f"{type(obj).__name__}.__init__() got an unexpected keyword "
                            f"argument {name!r}")
    values = {name: changes[name] if name in changes else getattr(obj, name) for name in names}
    return type(obj)(**values)


def asdict(obj: Any) -> dict[str, Any]:
    """The fields of a data class instance as a dict, recursing into data classes, lists,
    tuples and dicts; other values are deep-copied (as `dataclasses.asdict`)."""
    if not hasattr(type(obj), "__record_fields__"):
        raise TypeError("asdict() should be called on dataclass instances")
    return _asdict(obj)


def _asdict(obj: Any) -> Any:
    if hasattr(type(obj), "__record_fields__"):
        return {name: _asdict(getattr(obj, name)) for name in obj.__record_fields__}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[_asdict(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return type(obj)(_asdict(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((_asdict(k), _asdict(v)) for k, v in obj.items())
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    import copy

    return copy.deepcopy(obj)


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _process(cls: Any, *, eq: bool, order: bool, frozen: bool) -> Any:
    own = cls.__dict__
    collected: dict[str, Field] = {}
    base_frozen = None
    for base in reversed(cls.__mro__[1:]):
        base_fields = base.__dict__.get("__record_fields__")
        if base_fields is not None:
            collected.update(base_fields)
            base_frozen = base.__dict__["__record_frozen__"]
    if base_frozen is not None and base_frozen != frozen:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one" if frozen
                        else "cannot inherit non-frozen dataclass from a frozen one")
    for name, annotation in own.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = own.get(name, MISSING)
        if isinstance(value, Field):
            spec = value
        else:
            spec = Field(default=value)
        if isinstance(spec.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(spec.default)} for field {name} is not "
                             "allowed: use default_factory")
        spec.name = name
        collected[name] = spec
        if isinstance(value, Field):
            if spec.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
    seen_default = None
    for spec in collected.values():
        if spec.default is not MISSING or spec.default_factory is not MISSING:
            seen_default = spec.name
        elif seen_default is not None:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")

    cls.__record_fields__ = collected
    cls.__record_frozen__ = frozen
    _add(cls, "__match_args__", tuple(collected))
    _add(cls, "__init__", _lazy_init(cls))
    _add(cls, "__repr__", _repr)
    if eq:
        _add(cls, "__eq__", _eq)
    if order:
        comparisons: dict[str, Callable[..., Any]] = {
            "__lt__": _lt, "__le__": _le, "__gt__": _gt, "__ge__": _ge}
        for name, method in comparisons.items():
            if name in own:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}. "
                                "Consider using functools.total_ordering")
            setattr(cls, name, method)
    if frozen:
        guards: dict[str, Callable[..., None]] = {
            "__setattr__": _frozen_setattr, "__delattr__": _frozen_delattr}
        for name, method in guards.items():
            if name in own:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            setattr(cls, name, method)
    # The hash, as dataclasses decides it: a __hash__ the body defines stays; otherwise a
    # frozen class hashes its compared fields and a mutable one with eq is unhashable.
    body_hash = own.get("__hash__", MISSING)
    explicit = not (body_hash is MISSING or (body_hash is None and "__eq__" in own))
    if eq and not explicit:
        cls.__hash__ = _hash if frozen else None
    return cls


def _add(cls: type, name: str, value: Any) -> None:
    if name not in cls.__dict__:
        setattr(cls, name, value)


# Builds of a class through the generic `__init__` before its own is compiled: most classes
# are built once or twice in a run, where compiling (~0.1 ms) costs more than it saves.
COMPILE_AFTER = 8


def _lazy_init(cls: type) -> Callable[..., None]:
    """An `__init__` that binds the arguments itself for the first builds of the class, then
    compiles the class's own `__init__` (as fast as the one dataclasses writes) and uses it."""
    builds = 0

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal builds
        builds += 1
        if builds < COMPILE_AFTER:
            _bind(cls, self, args, kwargs)
            return
        init = _compile_init(cls)
        type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _bind(cls: type, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What the compiled `__init__` does, argument by argument (same TypeErrors)."""
    specs: dict[str, Field] = cls.__dict__["__record_fields__"]
    where = f"{cls.__qualname__}.__init__()"
    if len(args) > len(specs):
        raise TypeError(f"{where} takes {len(specs) + 1} positional arguments but "
                        f"{len(args) + 1} were given")
    values = dict(zip(specs, args, strict=False))
    for name, value in kwargs.items():
        if name not in specs:
            raise TypeError(f"{where} got an unexpected keyword argument {name!r}")
        if name in values:
            raise TypeError(f"{where} got multiple values for argument {name!r}")
        values[name] = value
    missing = [name for name, spec in specs.items() if name not in values
               and spec.default is MISSING and spec.default_factory is MISSING]
    if missing:
        raise TypeError(f"{where} missing {len(missing)} required argument"
                        f"{'s' if len(missing) > 1 else ''}: "
                        + ", ".join(repr(name) for name in missing))
    frozen = cls.__dict__["__record_frozen__"]
    for name, spec in specs.items():
        if name in values:
            value = values[name]
        elif spec.default_factory is not MISSING:
            value = spec.default_factory()
        else:
            value = spec.default
        if frozen:
            object.__setattr__(obj, name, value)
        else:
            setattr(obj, name, value)
    if hasattr(cls, "__post_init__"):
        obj.__post_init__()


def _compile_init(cls: type) -> Callable[..., None]:
    specs: dict[str, Field] = cls.__dict__["__record_fields__"]
    frozen = cls.__dict__["__record_frozen__"]
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY, "_set": object.__setattr__}
    params, body = [], []
    for name, spec in specs.items():
        value = name
        if spec.default_factory is not MISSING:
            namespace[f"_factory_{name}"] = spec.default_factory
            params.append(f"{name}=_FACTORY")
            value = f"_factory_{name}() if {name} is _FACTORY else {name}"
        elif spec.default is not MISSING:
            namespace[f"_default_{name}"] = spec.default
            params.append(f"{name}=_default_{name}")
        else:
            params.append(name)
        body.append(f"    _set(self, {name!r}, {value})\n" if frozen
                    else f"    self.{name} = {value}\n")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()\n")
    source = (f"def __init__(self{''.join(', ' + p for p in params)}):\n"
              + ("".join(body) or "    pass\n"))
    exec(source, namespace)  # noqa: S102 - built from the class's field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


class _Factory:
    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _compared(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, spec.name) for spec in obj.__record_fields__.values()
                 if spec.compare)


def _repr(self: Any) -> str:
    shown = ", ".join(f"{spec.name}={getattr(self, spec.name)!r}"
                      for spec in self.__record_fields__.values() if spec.repr)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _compared(self) == _compared(other)
    return NotImplemented


def _lt(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _compared(self) < _compared(other)
    return NotImplemented


def _le(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _compared(self) <= _compared(other)
    return NotImplemented


def _gt(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _compared(self) > _compared(other)
    return NotImplemented


def _ge(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _compared(self) >= _compared(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(_compared(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    if name in self.__record_fields__ or _frozen_class(self):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _frozen_delattr(self: Any, name: str) -> None:
    if name in self.__record_fields__ or _frozen_class(self):
        raise FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _frozen_class(obj: Any) -> bool:
    # dataclasses refuses any attribute on an instance of the frozen class itself, and only
    # fields on an instance of a subclass that is not a data class.
    return "__record_fields__" in type(obj).__dict__
