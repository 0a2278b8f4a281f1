"""Immutable records for the AST: fields declared as annotations, built without validation.

The parser builds a node and a span for nearly every token of a file, and every `runbook`
command that reads a file imports the AST first, so both the classes and their construction
must cost next to nothing. A `Frozen` class declares its fields as annotations, as a dataclass
does (defaults as class attributes); at class creation only the names and defaults are
collected. Each class's constructors are generated on first use, as functions that store the
keyword arguments straight into the instance's dict; a missing or unknown field is a
TypeError, as for any Python function. Nothing is checked beyond that: the parser, the only
producer, builds what the grammar allows. (pydantic models did the same with validation the
parser never used, and cost ~100 ms to import and build at every start: docs/decisions.md.)

Instances refuse attribute assignment and deletion, compare equal when of the same class with
equal fields, and hash their field values (so a record holding a list is unhashable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..dataclass import FrozenInstanceError
from ..hints import TYPE_CHECKING, dataclass_transform

if TYPE_CHECKING:
    from typing import Any, ClassVar, Self

# Stands for "not given" where a field's default must be copied for each instance.
_FRESH: Any = object()


@dataclass_transform(kw_only_default=True, frozen_default=True)
class Frozen:
    """Base of an immutable record: keyword construction, equality and hash by field values.

    `fields` names the fields, the base class's first, then each class's own in declared
    order. `Cls(**values)` and `Cls.make(**values)` build an instance alike (`make` spares
    the `__init__` call); a default that is a list is copied for each instance, so no two
    records share one. A `kind` field, when a class has one, leads the stored values, as it
    leads the record's JSON document (`nodes.to_data`).
    """

    fields: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = list(cls.fields)
        defaults = dict(cls.defaults)
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            if name not in names:
                names.append(name)
            if name in cls.__dict__:
                default = cls.__dict__[name]
                if isinstance(default, (dict, set, bytearray)):
                    raise TypeError(f"{cls.__name__}.{name}: a mutable default other than a "
                                    "list would be shared by every instance")
                defaults[name] = default
                # The value lives in each instance; a class attribute would only hide a typo.
                type.__delattr__(cls, name)
            else:
                defaults.pop(name, None)
        cls.fields = tuple(names)
        cls.defaults = defaults
        # Each class gets its own constructors, generated on first use: a subclass must never
        # call the ones generated for its base, and most classes of a grammar are never built
        # in a given run.
        cls.__init__ = _first_init  # type: ignore[method-assign]

        def make(**values: Any) -> Any:
            maker = _generate(cls, init=False)
            type.__setattr__(cls, "make", staticmethod(maker))
            return maker(**values)

        make.__doc__ = Frozen.make.__doc__
        type.__setattr__(cls, "make", staticmethod(make))

    def __init__(self, **values: Any) -> None:
        raise TypeError(f"{type(self).__name__} is abstract: build one of its subclasses")

    @classmethod
    def make(cls, **values: Any) -> Self:
        """Build an instance from keyword arguments, one per field (defaults may be left out)."""
        raise TypeError(f"{cls.__name__} is abstract: build one of its subclasses")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: "
                                  f"a {type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: "
                                  f"a {type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self.__dict__ == other.__dict__
        return NotImplemented

    def __hash__(self) -> int:
        # Every constructor stores the fields in the same order, so equal records hash alike.
        return hash(tuple(self.__dict__.values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in items(self))
        return f"{type(self).__name__}({shown})"


def items(record: Frozen) -> Iterator[tuple[str, Any]]:
    """A record's (field name, value) pairs, in the order of `fields`."""
    values = record.__dict__
    for name in record.fields:
        yield name, values[name]


def _first_init(self: Frozen, **values: Any) -> None:
    """The first construction of a class by its name: generate its `__init__`, then use it."""
    cls = type(self)
    init = _generate(cls, init=True)
    type.__setattr__(cls, "__init__", init)
    init(self, **values)


def _generate(cls: type[Frozen], init: bool) -> Callable[..., Any]:
    """Generate `make(*, field, …)` or `__init__(self, *, field, …)` for a record class
    (as dataclasses generate `__init__`).

    The values go key by key, always in the same order, into the instance's own dict: that
    dict then shares its keys with every other instance of the class (CPython's split
    dicts), which is faster to fill than a dict built apart and set as `__dict__`, and less
    than two thirds of its size (the AST of a 5,000-step file: 39 MB instead of 59 MB).
    """
    names = cls.fields
    order = ["kind", *(n for n in names if n != "kind")] if "kind" in names else list(names)
    namespace: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_FRESH": _FRESH,
                                 "_copy": list}
    params, copies = [], []
    for name in names:
        if name not in cls.defaults:
            params.append(name)
            continue
        default = cls.defaults[name]
        namespace[f"_default_{name}"] = default
        if isinstance(default, list):
            params.append(f"{name}=_FRESH")
            copies.append(f"    if {name} is _FRESH:\n"
                          f"        {name} = _copy(_default_{name})\n")
        else:
            params.append(f"{name}=_default_{name}")
    signature = ", ".join(params)
    stores = "".join(f"    _dict[{name!r}] = {name}\n" for name in order)
    if init:
        head = f"def __init__(_self, *, {signature}):\n"
        body = "    _dict = _self.__dict__\n" + stores
    else:
        head = f"def make(*, {signature}):\n"
        body = ("    _obj = _new(_cls)\n    _dict = _obj.__dict__\n" + stores
                + "    return _obj\n")
    exec(head + "".join(copies) + body, namespace)  # noqa: S102 - built from the field names
    function = namespace["__init__" if init else "make"]
    function.__qualname__ = f"{cls.__name__}.{function.__name__}"
    function.__doc__ = (f"Build a {cls.__name__} from keyword arguments." if not init
                        else f"A {cls.__name__} from keyword arguments.")
    return function
