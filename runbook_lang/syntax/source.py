"""Source text and positions: every diagnostic and AST node points back into a Source."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

_setattr = object.__setattr__


class FastModel(BaseModel):
    """A frozen model with `make()`: construction from trusted values without validation.

    The parser builds ~40 nodes per line of a large file; pydantic's `model_construct` walks
    every field each time, `make` copies a precomputed default dict instead. Validation and
    serialisation are built on first use (`defer_build`), so `runbook check` never pays them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    @classmethod
    def make(cls, **fields):
        """Build an instance from values already known to be valid."""
        maker = cls.__dict__.get("_maker")
        if maker is None:
            maker = _maker_for(cls)
            type.__setattr__(cls, "_maker", maker)
        return maker(fields)


def _maker_for(cls):
    # Field order as declared (kind first), so dumps read the same whatever the call order.
    fields = list(cls.model_fields)
    order = ["kind", *(n for n in fields if n != "kind")] if "kind" in fields else fields
    defaults = {name: cls.model_fields[name].default for name in order
                if not cls.model_fields[name].is_required()}
    missing = object()
    new = cls.__new__

    def make(fields: dict):
        obj = new(cls)
        values = {}
        for name in order:
            value = fields.get(name, missing)
            values[name] = defaults[name] if value is missing else value
        _setattr(obj, "__dict__", values)
        _setattr(obj, "__pydantic_fields_set__", set(fields))
        _setattr(obj, "__pydantic_extra__", None)
        _setattr(obj, "__pydantic_private__", None)
        return obj

    return make


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
        """Read a file as UTF-8; raises OSError or UnicodeDecodeError for the caller to report."""
        data = path.read_bytes()
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
