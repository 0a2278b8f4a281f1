"""Source text and positions: every diagnostic and AST node points back into a Source."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..limits import MAX_RUNBOOK_BYTES, read_bounded


class FastModel(BaseModel):
    """A frozen model with `make()`: construction from trusted values without validation.

    The parser builds a node and its span for nearly every token of a file; pydantic's
    `model_construct` validates nothing but still walks every field each time. `make` is a
    function generated for each class that fills the instance's dict in one step (fields in
    declared order, `kind` first, as `model_validate` would). Every field counts as set, and
    the instances of a class share that one set of names: pydantic changes it only when an
    attribute is assigned, which a frozen model refuses.
    Validation and serialisation are built on first use (`defer_build`), so `runbook check`
    never pays them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    @classmethod
    def make(cls, **fields):
        """Build an instance from values already known to be valid (keyword arguments)."""
        return _maker_for(cls)(**fields)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)

        # Each class gets its own `make`, generated on first use (a subclass must never
        # call the one generated for its base).
        def make(**fields):
            maker = _maker_for(cls)
            type.__setattr__(cls, "make", staticmethod(maker))
            return maker(**fields)

        make.__doc__ = FastModel.make.__doc__
        type.__setattr__(cls, "make", staticmethod(make))


def _maker_for(cls) -> Callable[..., Any]:
    """Generate `make(*, field, …)` for a model class (as dataclasses generate __init__)."""
    names = list(cls.model_fields)
    order = ["kind", *(n for n in names if n != "kind")] if "kind" in names else names
    namespace: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_set": object.__setattr__,
                                 "_names": set(order)}
    params = []
    for name in order:
        field = cls.model_fields[name]
        if field.is_required():
            params.append(name)
        else:
            namespace[f"_default_{name}"] = field.default
            params.append(f"{name}=_default_{name}")
    values = ", ".join(f"{name!r}: {name}" for name in order)
    source = (f"def make(*, {', '.join(params)}):\n"
              "    obj = _new(_cls)\n"
              f"    _set(obj, '__dict__', {{{values}}})\n"
              "    _set(obj, '__pydantic_fields_set__', _names)\n"
              "    _set(obj, '__pydantic_extra__', None)\n"
              "    _set(obj, '__pydantic_private__', None)\n"
              "    return obj\n")
    exec(source, namespace)  # noqa: S102 - the source is built from the model's field names
    maker = namespace["make"]
    maker.__qualname__ = f"{cls.__name__}.make"
    maker.__doc__ = f"Build a {cls.__name__} from values already known to be valid."
    return maker


class Span(FastModel):
    """A region of source text: 1-based line and column of its start and end, and offsets."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int


@dataclass
class Source:
    """A runbook file's path and text, with a line index for offset -> line/column."""

    path: str
    text: str
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self._line_starts = starts

    @classmethod
    def from_path(cls, path: Path, shown_as: str | None = None) -> Source:
        """Read a file as UTF-8; raises OSError, UnicodeDecodeError or `limits.TooLarge`
        (beyond MAX_RUNBOOK_BYTES) for the caller to report."""
        data = read_bounded(path, MAX_RUNBOOK_BYTES)
        if b"\x00" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1,
                                     "binary file (NUL byte)")
        # An editor's byte-order mark and Windows line ends are not part of the text: a `\r`
        # kept in a triple-quoted command would reach the shell.
        text = data.decode("utf-8-sig")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        return cls(shown_as or str(path), text)

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        """A Span for the half-open character range [start, end)."""
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span.make(line=line, column=column, end_line=end_line,
                         end_column=end_column, start=start, end=end)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        if line < 1 or line > len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start:] if end == -1 else self.text[start:end]
