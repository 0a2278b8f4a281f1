"""A command's output on its way out: masked, counted, hashed, tailed, logged, echoed.

Shared by every executor: an executor only pours raw chunks into an `Output` (a `Sink`), so
that masking, the digests the transcript records and the live display behave the same for
local and remote commands. Only the capped capture (`into`, a probe's `stdout`) is held whole.
"""

from __future__ import annotations

from collections.abc import Callable

from ..dataclass import dataclass
from ..digest import EMPTY_SHA256, bulk
from ..evaluation.masking import StreamMasker
from ..hints import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from typing import Any

CAPTURE_LIMIT = 16 << 20
TAIL_BYTES = 2048
TAIL_LINES = 20

Echo = Callable[[str, bytes], None]


class LogSink(Protocol):
    """Where a stream's (masked) bytes are kept: a file, or rows in a database."""

    def write(self, data: bytes) -> None:
        """Append bytes."""

    def close(self) -> None:
        """No more bytes."""


@dataclass(frozen=True)
class StreamDigest:
    """What the transcript records of one output stream (after masking)."""

    bytes: int
    sha256: str
    tail: str


class Output:
    """One output stream of one command; a `Sink` for the executors."""

    def __init__(self, name: str, masking: StreamMasker, log: LogSink | None = None,
                 echo: Echo | None = None, capture: bool = False) -> None:
        self.name = name
        self.log = log
        self.capture_truncated = False
        self._masking = masking
        self._echo = echo
        self._sha: Any = None  # made with the first byte: a silent stream hashes nothing
        self._size = 0
        self._tail = b""
        self._captured: list[bytes] | None = [] if capture else None
        self._captured_size = 0
        self._finished = False

    def take(self, chunk: bytes) -> None:
        """Pass one chunk read from the command."""
        self._emit(self._masking.feed(chunk))

    def finish(self) -> None:
        """End of stream: release what masking held back (once)."""
        if not self._finished:
            self._finished = True
            self._emit(self._masking.flush())

    def digest(self) -> StreamDigest:
        """Size, SHA-256 and tail of the masked stream."""
        if not self._size:
            return EMPTY
        return StreamDigest(self._size, self._sha.hexdigest(), _tail_text(self._tail, self._size))

    def captured(self) -> str | None:
        """The captured text (None when not capturing)."""
        if self._captured is None:
            return None
        return b"".join(self._captured).decode("utf-8", "replace")

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._sha is None:
            self._sha = bulk()
        self._sha.update(data)
        if len(data) >= TAIL_BYTES:
            self._tail = data[-TAIL_BYTES:]
        else:
            self._tail = (self._tail + data)[-TAIL_BYTES:]
        if self.log is not None:
            self.log.write(data)
        if self._captured is not None:
            self._capture(data)
        if self._echo is not None:
            self._echo(self.name, data)

    def _capture(self, data: bytes) -> None:
        assert self._captured is not None
        room = CAPTURE_LIMIT - self._captured_size
        if len(data) > room:
            data = data[:room]
            self.capture_truncated = True
        if data:
            self._captured.append(data)
            self._captured_size += len(data)


EMPTY = StreamDigest(0, EMPTY_SHA256, "")


def _tail_text(tail: bytes, total: int) -> str:
    if total > len(tail):
        # The cut may have split a UTF-8 sequence: drop its continuation bytes.
        skip = 0
        while skip < min(3, len(tail)) and 0x80 <= tail[skip] < 0xC0:
            skip += 1
        tail = tail[skip:]
    lines = tail.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(lines[-TAIL_LINES:])
