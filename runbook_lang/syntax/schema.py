"""The AST's JSON Schema, for tools: built on demand by pydantic from the node annotations.

The node classes are plain records (`frozen.Frozen`), so that reading a file never imports
pydantic. The schema is rarely asked for; when it is, each node class is mirrored by a
pydantic model of the same name, docstring, fields, annotations and defaults, and pydantic
writes the schema of the mirror of `Runbook`. The unions of `nodes` (`Expr`, `Statement`,
…) become unions discriminated on `kind`, as the JSON documents of `nodes.to_data` are.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union

from . import nodes
from .frozen import Frozen
from .source import Span

# The module the mirrors claim: none, so that pydantic resolves their annotations in the
# namespace given here only (this module's own `Span` is the record, not its mirror).
MIRRORS = "runbook_lang.syntax.schema.mirrors"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a `nodes.to_data(runbook)` document: title `Runbook`, one `$defs`
    entry per node class, unions discriminated on `kind`."""
    from pydantic import BaseModel, ConfigDict, Field, create_model

    config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    classes: list[type[Frozen]] = [Span, *nodes.node_classes()]
    mirrors: dict[str, type[BaseModel]] = {}
    for cls in classes:
        definitions: dict[str, Any] = {}
        for name in cls.fields:
            annotation = _annotation(cls, name)
            definitions[name] = (annotation, cls.defaults.get(name, ...))
        mirrors[cls.__name__] = create_model(
            cls.__name__, __config__=config, __doc__=cls.__doc__,
            __module__=MIRRORS, **definitions)
    namespace: dict[str, Any] = {"Literal": Literal, **mirrors}
    for alias, union in vars(nodes).items():
        if isinstance(union, types.UnionType) and all(
                isinstance(member, type) and issubclass(member, nodes.Node)
                for member in union.__args__):
            members = tuple(mirrors[member.__name__] for member in union.__args__)
            namespace[alias] = Annotated[Union[members], Field(discriminator="kind")]  # noqa: UP007
    for mirror in mirrors.values():
        mirror.model_rebuild(_types_namespace=namespace)
    return mirrors["Runbook"].model_json_schema()


def _annotation(cls: type[Frozen], name: str) -> str:
    """A field's annotation as written (text, under `from __future__ import annotations`)."""
    for klass in cls.__mro__:
        written = klass.__dict__.get("__annotations__", {}).get(name)
        if written is not None:
            return str(written)
    raise LookupError(f"{cls.__name__}.{name} has no annotation")
