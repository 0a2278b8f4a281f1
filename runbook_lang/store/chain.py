"""The hash chain of a run's records, and its verification (LANGUAGE.md §9).

Pure functions over the transcript's bytes, the head anchor's text and a way to read output
logs, so that every store verifies the same way and a store's own files or rows never leak
into the rules.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

ZERO = "0" * 64
COMMON = ("seq", "time", "run_id", "event", "prev")

# Reads an output log named by a record: (size, sha256 hex), or None when it is missing.
LogReader = Callable[[str], "tuple[int, str] | None"]


Mask = Callable[[str], str]


def identity(text: str) -> str:
    """The mask of a run without secrets."""
    return text


def masked(value: object, mask: Mask) -> object:
    """Copy ``value`` with every string in it (nested keys too) passed through ``mask``."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {masked(k, mask): masked(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, mask) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Paths and other objects become text here, so that the mask sees what JSON will hold.
    return mask(str(value))


def sha(data: bytes) -> str:
    """The SHA-256 of bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Problem:
    """One finding of ``verify``: the 1-based line it concerns (0: the run as a whole)."""

    line: int
    seq: int | None
    reason: str


@dataclass
class VerifyResult:
    """The outcome of ``verify``; ``torn`` is set when the last line is incomplete."""

    ok: bool
    records: int
    head: str | None
    problems: list[Problem] = field(default_factory=list)
    torn: dict | None = None


def parse_line(line: bytes) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:  # covers bad UTF-8 too
        return None
    return value if isinstance(value, dict) else None


def split_lines(data: bytes) -> tuple[list[bytes], bytes | None]:
    """Complete lines (without newlines) and the torn tail, if any.

    The tail is what follows the last newline, or else a last line that is not valid JSON
    (a crash can leave garbage such as NUL bytes before the newline reaches the disk).
    """
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        return lines, tail
    if lines and parse_line(lines[-1]) is None:
        return lines[:-1], lines[-1] + b"\n"
    return lines, None


def torn_info(torn: bytes | None) -> dict | None:
    return None if torn is None else {"bytes": len(torn), "sha256": sha(torn)}


def _check_records(recs: list[dict | None], problems: list[Problem]) -> set[int]:
    """Per-line checks (JSON, fields, seq order, run id); returns the lines found bad."""
    bad: set[int] = set()
    # The run's id is what most records say, so an edit to the first line is blamed on it.
    ids = Counter(r.get("run_id") for r in recs if r is not None)
    run_id = ids.most_common(1)[0][0] if ids else None
    expected = 0
    for n, rec in enumerate(recs, 1):
        reason = None
        seq = rec.get("seq") if rec else None
        if rec is None:
            reason = f"line {n} is not valid JSON"
        elif missing := [k for k in COMMON if k not in rec]:
            reason = f"line {n} lacks field(s) {', '.join(missing)}"
        elif type(seq) is not int:
            reason, seq = f"line {n} has a non-integer seq {seq!r}", None
        elif seq != expected:
            reason = (f"record {expected} is missing or out of order: "
                      f"seq {seq} found at line {n} where {expected} was expected")
        elif rec["run_id"] != run_id:
            reason = f"line {n} has run_id {rec['run_id']!r} where {run_id!r} was expected"
        # Resynchronise on the seq found, so one deleted line is one problem, not many.
        expected = seq + 1 if seq is not None else expected + 1
        if reason:
            bad.add(n)
            problems.append(Problem(n, seq, reason))
    return bad


def _broken_links(recs: list[dict | None], hashes: list[str]) -> dict[int, str]:
    """Lines whose ``prev`` is not the previous line's hash, with what caught each."""
    broken, prev = {}, ZERO
    for n, rec in enumerate(recs, 1):
        if rec is not None and rec.get("prev") != prev:
            broken[n] = f"the prev of line {n}"
        prev = hashes[n - 1]
    return broken


def _check_anchor(anchor_text: str | None, hashes: list[str], broken: dict[int, str],
                  problems: list[Problem]) -> int | None:
    """Compare the head anchor: it catches an edited last line and a cut-off tail.

    Returns the line the anchor confirms as unchanged, if any.
    """
    # Never synced or emptied by a crash: then nothing anchors the tail.
    if anchor_text is None or not anchor_text.strip():
        return None
    try:
        anchor = json.loads(anchor_text)
        count, head = int(anchor["records"]), str(anchor["head"])
    except (ValueError, KeyError, TypeError):
        problems.append(Problem(0, None, "the head file is not readable"))
        return None
    if count > len(hashes):
        problems.append(Problem(len(hashes) + 1, len(hashes), (
            f"the transcript is truncated: the head file records {count} records, "
            f"only {len(hashes)} complete lines remain")))
    elif count and hashes[count - 1] != head:
        # As if line count+1 existed and its prev did not match: the same attribution applies.
        broken.setdefault(count + 1, "the head file")
    elif count:
        return count
    return None


def _attribute(broken: dict[int, str], bad: set[int], recs: list[dict | None],
               anchored: int | None, problems: list[Problem]) -> None:
    """Name the edited line for each broken link not already explained by a bad line.

    A broken link at n means line n-1 changed, or line n's own ``prev`` did; when the next
    link breaks too, or the head file vouches for line n-1, it is line n itself.
    """
    done: set[int] = set()
    for n in sorted(broken):
        if n in done or n in bad or n - 1 in bad:
            continue
        start = "64 zeros" if n == 1 else f"the hash of line {n - 1}"
        if n + 1 in broken and n <= len(recs):
            line, done = n, done | {n + 1}
            how = f"its prev is not {start} and its hash does not match {broken[n + 1]}"
        elif n - 1 == anchored and n <= len(recs):
            line, how = n, f"its prev is not {start}, which the head file confirms"
        elif n == 1:
            line, how = 1, "its prev is not 64 zeros, the start of a chain"
        else:
            line, how = n - 1, f"its hash does not match {broken[n]}"
        seq = (recs[line - 1] or {}).get("seq")
        problems.append(Problem(line, seq, f"record {seq} (line {line}) was edited: {how}"))


def _log_refs(rec: dict) -> Iterator[tuple[str, dict]]:
    """(relative log path, recorded digest) for each stream log a command record names."""
    top, seen = rec.get("log"), set()
    for stream in ("stdout", "stderr"):
        found = rec.get(stream)
        digest: dict = found if isinstance(found, dict) else {}
        rel = digest.get("log")
        if rel is None and isinstance(top, dict):
            rel = top.get(stream)
        if rel is None and isinstance(top, str) and top.endswith(f".{stream}.log"):
            rel = top
        if isinstance(rel, str) and rel not in seen:
            seen.add(rel)
            yield rel, digest


def log_problem(rel: str, digest: dict, read_log: LogReader) -> str | None:
    """Why a recorded output log does not match (None when it does)."""
    if rel.startswith("/") or ".." in rel.split("/"):
        return f"output log {rel} is outside the run directory"
    found = read_log(rel)
    if found is None:
        return f"output log {rel} is missing"
    size, digest_hex = found
    if "sha256" in digest and digest_hex != digest["sha256"]:
        return f"output log {rel} changed: sha256 {digest_hex}, recorded {digest['sha256']}"
    if "bytes" in digest and size != digest["bytes"]:
        return f"output log {rel} changed: {size} bytes, recorded {digest['bytes']}"
    return None


def _check_logs(recs: list[dict | None], read_log: LogReader, problems: list[Problem]) -> None:
    for n, rec in enumerate(recs, 1):
        if rec is not None and rec.get("event") == "command_finished":
            for rel, digest in _log_refs(rec):
                if reason := log_problem(rel, digest, read_log):
                    problems.append(Problem(n, rec.get("seq"), reason))


def verify_chain(data: bytes, anchor_text: str | None, read_log: LogReader) -> VerifyResult:
    """Recompute the hash chain and output digests of a transcript's bytes.

    Problems come sorted by line, so ``problems[0]`` names the first bad record.
    """
    lines, torn = split_lines(data)
    hashes = [sha(line) for line in lines]
    recs = [parse_line(line) for line in lines]
    problems: list[Problem] = []
    bad = _check_records(recs, problems)
    broken = _broken_links(recs, hashes)
    anchored = _check_anchor(anchor_text, hashes, broken, problems)
    _attribute(broken, bad, recs, anchored, problems)
    _check_logs(recs, read_log, problems)
    if torn is not None:
        n = len(lines) + 1
        reason = f"line {n} is torn (incomplete last line, {len(torn)} bytes)"
        problems.append(Problem(n, None, reason))
    problems.sort(key=lambda p: p.line)
    head = hashes[-1] if hashes else None
    return VerifyResult(not problems, len(lines), head, problems, torn_info(torn))
