"""runbook_lang.dataclass behaves as the standard `dataclasses` for the API the package uses.

Each case builds the same class twice, once with each decorator, and holds the two to the
same observable behaviour: construction (positional, keyword, defaults, fresh factory
values, wrong arguments), repr, equality, hash, ordering, frozen assignment, replace,
asdict and fields.
"""

from __future__ import annotations

import dataclasses as std
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lang import dataclass as ours

NAMES = ("alpha", "beta", "gamma", "delta")
values = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none(),
                   st.tuples(st.integers(0, 2)))


def build(module: Any, name: str, shape: list[tuple[str, str]], frozen: bool,
          order: bool, post_init: bool = False) -> type:
    """A class of `shape` ((field, "plain" | "default" | "factory" | "hidden")…) made by
    `module`'s dataclass decorator."""
    namespace: dict[str, Any] = {"__annotations__": {}, "__qualname__": name,
                                 "__module__": __name__}
    for field_name, kind in shape:
        namespace["__annotations__"][field_name] = "Any"
        if kind == "default":
            namespace[field_name] = 7
        elif kind == "factory":
            namespace[field_name] = module.field(default_factory=list)
        elif kind == "hidden":
            namespace[field_name] = module.field(default=None, repr=False, compare=False)
    namespace["__annotations__"]["shared"] = "ClassVar[int]"
    namespace["shared"] = 3
    if post_init:
        def __post_init__(self: Any) -> None:
            object.__setattr__(self, "seen", True)
        namespace["__post_init__"] = __post_init__
    return module.dataclass(frozen=frozen, order=order)(type(name, (), namespace))


def outcome(action: Any) -> tuple[str, Any]:
    """What an action did: its value, or the type of what it raised."""
    try:
        return "value", action()
    except Exception as error:  # noqa: BLE001 - the kind of failure is what is compared
        return "raised", type(error).__name__.replace("FrozenInstanceError", "frozen")


shapes = st.lists(st.sampled_from(["plain", "default", "factory", "hidden"]),
                  min_size=0, max_size=4).map(
    lambda kinds: [(NAMES[i], kind) for i, kind in enumerate(sorted(
        kinds, key=lambda k: k != "plain"))])


def observe(cls: type, shape: list[tuple[str, str]], first: list[Any], second: list[Any],
            by_keyword: bool) -> list[Any]:
    """Everything a user can see of a class built from two argument lists."""
    module = ours if hasattr(cls, "__record_fields__") else std

    def construct(args: list[Any]) -> Any:
        if by_keyword:
            return cls(**dict(zip(NAMES, args, strict=False)))
        return cls(*args)

    a, b = outcome(lambda: construct(first)), outcome(lambda: construct(second))
    if a[0] != "value" or b[0] != "value":
        return [a[0], b[0], a[1] if a[0] == "raised" else None,
                b[1] if b[0] == "raised" else None]
    x, y = a[1], b[1]
    change = {NAMES[0]: 5} if shape else {}
    return [repr(x), x == y, x != y, outcome(lambda: hash(x) == hash(y)),
            outcome(lambda: hash(x))[0], outcome(lambda: x < y), outcome(lambda: x >= y),
            getattr(x, "seen", False), outcome(lambda: setattr(x, NAMES[0], 1))[0],
            outcome(lambda: setattr(x, "other", 1))[0],
            outcome(lambda: delattr(x, NAMES[0]))[0],
            repr(outcome(lambda: module.replace(y, **change))), module.asdict(y),
            [f.name for f in module.fields(cls)], cls.__match_args__, cls.shared]


@settings(max_examples=300, deadline=None)
@given(shape=shapes, frozen=st.booleans(), order=st.booleans(), post_init=st.booleans(),
       first=st.lists(values, max_size=5), second=st.lists(values, max_size=5),
       by_keyword=st.booleans())
def test_same_behaviour_as_the_standard_module(shape, frozen, order, post_init, first,
                                               second, by_keyword):
    standard = build(std, "Point", shape, frozen, order, post_init)
    expected = observe(standard, shape, first, second, by_keyword)
    # A class's first builds bind their arguments one by one; later ones run the compiled
    # __init__: both ways are held to the standard module.
    for compile_after in (ours.COMPILE_AFTER, 1):
        saved, ours.COMPILE_AFTER = ours.COMPILE_AFTER, compile_after
        try:
            own = build(ours, "Point", shape, frozen, order, post_init)
            assert observe(own, shape, first, second, by_keyword) == expected
        finally:
            ours.COMPILE_AFTER = saved


def test_each_instance_gets_a_fresh_value_from_its_factory():
    @ours.dataclass
    class Bag:
        items: list[int] = ours.field(default_factory=list)

    one, two = Bag(), Bag()
    one.items.append(1)
    assert two.items == []
    assert Bag([4]).items == [4]


def test_inheritance_puts_base_fields_first_and_keeps_a_redeclared_field_in_place():
    for module in (std, ours):
        @module.dataclass(frozen=True)
        class Base:
            a: int
            b: int = 2

        @module.dataclass(frozen=True)
        class Child(Base):
            c: int = 3
            a: int = 1

        assert repr(Child()).endswith("Child(a=1, b=2, c=3)")
        assert Child(9, 8, 7) == Child(a=9, b=8, c=7)
        assert Child(1, 2, 3) != Base(1, 2)
        with pytest.raises(module.FrozenInstanceError):
            Child().b = 5


def test_methods_the_class_defines_are_kept():
    @ours.dataclass
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name.lower() == self.name.lower()

        def __hash__(self) -> int:
            return hash(self.name.lower())

    assert repr(Named("x")) == "<x>"
    assert Named("A") == Named("a") and hash(Named("A")) == hash(Named("a"))


def test_a_mutable_class_with_equality_is_unhashable_and_a_frozen_one_hashes():
    @ours.dataclass
    class Mutable:
        x: int

    @ours.dataclass(frozen=True)
    class Fixed:
        x: int
        note: str = ours.field(default="", compare=False)

    with pytest.raises(TypeError):
        hash(Mutable(1))
    assert hash(Fixed(1, "a")) == hash(Fixed(1, "b")) and Fixed(1, "a") == Fixed(1, "b")
    assert {Fixed(1): "one"}[Fixed(1)] == "one"


def test_declarations_dataclasses_refuses_are_refused():
    with pytest.raises(ValueError, match="mutable default"):
        @ours.dataclass
        class Shared:
            items: list[int] = []  # noqa: RUF012 - the mistake under test

    with pytest.raises(TypeError, match="non-default argument 'b' follows default"):
        @ours.dataclass
        class Order:
            a: int = 1
            b: int

    with pytest.raises(ValueError, match="both default and default_factory"):
        ours.field(default=1, default_factory=list)

    @ours.dataclass(frozen=True)
    class Frozen:
        a: int

    with pytest.raises(TypeError, match="cannot inherit non-frozen"):
        @ours.dataclass
        class Thawed(Frozen):
            b: int = 0


def test_asdict_recurses_into_records_lists_and_dicts_and_refuses_other_values():
    @ours.dataclass(frozen=True)
    class Leaf:
        name: str
        tags: tuple[str, ...] = ()

    @ours.dataclass
    class Tree:
        leaves: list[Leaf]
        index: dict[str, Leaf]

    tree = Tree([Leaf("a", ("x",))], {"b": Leaf("b")})
    assert ours.asdict(tree) == {"leaves": [{"name": "a", "tags": ("x",)}],
                                 "index": {"b": {"name": "b", "tags": ()}}}
    assert ours.is_dataclass(tree) and ours.is_dataclass(Tree) and not ours.is_dataclass(1)
    with pytest.raises(TypeError):
        ours.asdict({"a": 1})
    with pytest.raises(TypeError, match="unexpected keyword"):
        ours.replace(Leaf("a"), colour="red")


def test_classvars_are_not_fields():
    @ours.dataclass
    class Counter:
        limit: ClassVar[int] = 10
        count: int = 0

    assert [f.name for f in ours.fields(Counter)] == ["count"]
    assert Counter().limit == 10
