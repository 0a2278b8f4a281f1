"""Source text and positions: every diagnostic and AST node points back into a Source."""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from ..dataclass import dataclass, field
from ..limits import MAX_RUNBOOK_BYTES, read_bounded
from .frozen import Frozen

BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark


class Span(Frozen):
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
        # kept in a triple-quoted command would reach the shell. (As "utf-8-sig" decodes,
        # without loading that codec for every run.)
        text = (data[3:] if data.startswith(BOM) else data).decode("utf-8")
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
