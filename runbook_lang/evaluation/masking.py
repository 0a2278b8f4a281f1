"""Secret masking for text, bytes and chunked byte streams.

Every occurrence of a secret is replaced by ``***`` before it can reach the terminal,
the transcript or an output log (LANGUAGE.md §6, rule 2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_MASK_BYTES = MASK.encode()


class Masker:
    """The run's set of secret values, and the one place that hides them.

    Each secret is held in every form the tool can print it in: as given; quoted for each
    shell context a command can interpolate it into (`quoting.quoted_forms`); escaped as
    JSON and as Python would show it in a message; percent-encoded as in a URL.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._text_re: re.Pattern[str] | None = None
        self._bytes = _ByteForms(())
        self._stale = False
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        """Register a secret value; empty values are ignored (they would match everywhere)."""
        if not value:
            return
        for form in printed_forms(value):
            if form and form not in self._secrets:
                self._secrets.add(form)
                self._stale = True

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def longest_bytes(self) -> int:
        """Length in UTF-8 bytes of the longest secret form (0 without secrets)."""
        return self._compiled().longest

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ``***``."""
        self._compiled()
        if self._text_re is None:
            return text
        return self._text_re.sub(MASK, text)

    def mask_bytes(self, data: bytes) -> bytes:
        """Return UTF-8 ``data`` with every secret replaced by ``***``."""
        return self._compiled().mask(data)

    def stream(self) -> StreamMasker:
        """Start masking one byte stream that arrives in chunks.

        The stream sees the secrets registered so far; later ``add`` calls do not reach it.
        """
        return StreamMasker(self._compiled())

    def _compiled(self) -> _ByteForms:
        if self._stale:
            forms = sorted(self._secrets, key=len, reverse=True)
            self._text_re = _alternation(forms)
            self._bytes = _ByteForms(form.encode() for form in forms)
            self._stale = False
        return self._bytes


def printed_forms(value: str) -> set[str]:
    """Every form of `value` the tool may print: as is, shell-quoted for any context, escaped
    inside a JSON string or a Python repr, percent-encoded."""
    import json
    import urllib.parse

    from .quoting import quoted_forms

    forms = quoted_forms(value)
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.add(json.dumps(value)[1:-1])
    forms.add(repr(value)[1:-1])
    forms.add(urllib.parse.quote(value, safe=""))
    forms.add(urllib.parse.quote_plus(value, safe=""))
    return forms


def _alternation(forms: list) -> re.Pattern | None:
    # Longest first: at a given position the regex takes the first alternative that
    # matches, so a secret that contains another one is hidden whole.
    if not forms:
        return None
    sep = b"|" if isinstance(forms[0], bytes) else "|"
    return re.compile(sep.join(re.escape(form) for form in forms))


class _ByteForms:
    """The secret forms as UTF-8, compiled once and shared by every stream."""

    def __init__(self, forms: Iterable[bytes]) -> None:
        self.forms = sorted(set(forms), key=len, reverse=True)
        self.pattern: re.Pattern[bytes] | None = _alternation(self.forms)
        self.longest = len(self.forms[0]) if self.forms else 0
        # An alternation scans at a few hundred MB/s, ``bytes.__contains__`` at several
        # GB/s: data is screened for the forms that contain no other form (data free of
        # them holds no secret) before the regex sees it. The quoted form of most secrets
        # contains the plain one and needs no screening of its own.
        self.needles = tuple(
            f for f in self.forms if not any(o != f and o in f for o in self.forms)
        )
        self.by_first: dict[int, list[bytes]] = {}
        for form in self.forms:
            self.by_first.setdefault(form[0], []).append(form)

    def may_hold(self, data: bytes) -> bool:
        """False when ``data`` certainly contains no secret."""
        return any(needle in data for needle in self.needles)

    def mask(self, data: bytes) -> bytes:
        if self.pattern is None or not self.may_hold(data):
            return data
        return self.pattern.sub(_MASK_BYTES, data)

    def open_end(self, buf: bytes) -> int:
        """The first position of ``buf`` whose rest is a proper prefix of some form.

        From there on a secret may begin that only later bytes complete; everything before
        it is decided. Returns ``len(buf)`` when no such position exists.
        """
        size = len(buf)
        start = max(size - self.longest + 1, 0)
        found = size
        for first, forms in self.by_first.items():
            pos = buf.find(first, start, found)
            while pos != -1:
                rest = buf[pos:]
                if any(len(f) > len(rest) and f.startswith(rest) for f in forms):
                    found = pos
                    break
                pos = buf.find(first, pos + 1, found)
        return found


class StreamMasker:
    """Masks a byte stream fed in chunks, where a secret may straddle two chunks.

    ``feed`` returns the bytes that can no longer change. It holds back only an end of the
    stream that could be the start of a secret, so at most ``len(longest secret) - 1``
    bytes, and usually none: a live display is not kept waiting. The concatenation of
    every ``feed`` result and ``flush`` equals ``Masker.mask_bytes`` of the whole stream,
    whatever the chunking.
    """

    def __init__(self, forms: _ByteForms) -> None:
        self._forms = forms
        self._pattern = forms.pattern
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return the masked bytes that are safe to emit now."""
        if self._pattern is None:
            return chunk  # no secrets: hand the chunk through untouched, no copy
        buf = self._held + chunk if self._held else chunk
        # A regex decision at position p depends only on the bytes from p on; it is final
        # unless those bytes could be the start of a longer secret.
        cut = self._forms.open_end(buf)
        if cut == 0:
            self._held = buf
            return b""
        out, resume = self._mask_until(buf, cut)
        self._held = buf[resume:]
        return out

    def flush(self) -> bytes:
        """End the stream; return whatever was held back, masked."""
        held, self._held = self._held, b""
        return self._forms.mask(held)

    def _mask_until(self, buf: bytes, cut: int) -> tuple[bytes, int]:
        """Mask matches that start before ``cut``; return the output and where to resume."""
        if not self._forms.may_hold(buf):
            return buf[:cut], cut
        pattern = self._pattern
        assert pattern is not None  # feed() masks nothing when there are no secrets
        pieces: list[bytes] = []
        pos = 0
        for match in pattern.finditer(buf):
            start = match.start()
            if start >= cut:
                break
            pieces.append(buf[pos:start])
            pieces.append(_MASK_BYTES)
            pos = match.end()
        if not pieces:
            return buf[:cut], cut
        # A match may end past `cut`; the scan then resumes right after it.
        resume = max(pos, cut)
        pieces.append(buf[pos:resume])
        return b"".join(pieces), resume
