"""The hash chain of a run's records, and its verification (LANGUAGE.md §9).

Pure functions over the transcript's bytes, the head anchor's text, the runbook snapshot and a
way to read output logs, so that every store verifies the same way and a store's own files or
rows never leak into the rules.

The head anchor names the last record a stop (or a sync) made durable: `{"seq": S, "hash":
H}`. Records after it are one of two things, told apart by the record the head names:

- the head names a `run_finished` record: the run stopped there, and was sealed, so anything
  after it was *appended* (tampering);
- otherwise the writer was killed between two syncs: the records after the head are
  *unsealed*, as a torn last line is *torn*. `resume` continues such a run (recording what it
  found) and `verify` reports them, since it cannot vouch for them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator

from ..dataclass import dataclass, field
from ..digest import sha256_hex
from ..hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Literal

    # torn: an incomplete last line; unsealed: complete records after the head of a run
    # that did not stop (killed between syncs); both are what a crash leaves, and `resume`
    # continues from them. tampered: everything else.
    Kind = Literal["torn", "unsealed", "tampered"]

ZERO = "0" * 64
COMMON = ("seq", "time", "run_id", "event", "prev")
_RESERVED = frozenset(COMMON)

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


class RecordEncoder:
    """Turns an event into a record and its exact line, the same for every store (so an
    exported run is byte for byte what the local directory holds): the common fields first,
    the event's fields masked, compact JSON, UTC times to the millisecond."""

    def __init__(self, run_id: str, mask: Mask = identity) -> None:
        self.run_id = run_id
        self.mask = None if mask is identity else mask
        # A mask bound to an object that is false while it knows no secret (the run's
        # Masker) is skipped until it learns one: most runs have no secrets.
        self._mask_owner = getattr(mask, "__self__", None)
        self._second, self._stamp = -1, ""
        self._encode = compact_encoder()

    def now(self) -> str:
        """UTC RFC 3339 time with milliseconds; the per-second prefix is formatted once."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def record(self, seq: int, prev: str, event: str, fields: dict) -> tuple[dict, bytes]:
        """The record of `event` at `seq` after `prev`, and its line (without newline)."""
        if not _RESERVED.isdisjoint(fields):
            raise ValueError(f"reserved field(s): {sorted(_RESERVED.intersection(fields))}")
        if self.mask is not None and (self._mask_owner is None or self._mask_owner):
            fields = {k: masked(v, self.mask) for k, v in fields.items()}
        record = {"seq": seq, "time": self.now(), "run_id": self.run_id, "event": event,
                  "prev": prev, **fields}
        return record, self._encode(record).encode()


def compact_encoder() -> Callable[[object], str]:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)`, built
    once: json.dumps with options builds an encoder per call, and JSONEncoder.encode builds
    its C encoder per call too. This calls the C encoder directly where there is one."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    # The arguments JSONEncoder.iterencode gives it for these options.
    markers: dict[int, object] = {}
    encode = make(markers, str, json.encoder.encode_basestring, None, ":", ",", False, False,
                  True)

    def dumps(value: object) -> str:
        if isinstance(value, str):
            return encoder.encode(value)
        try:
            return "".join(encode(value, 0))
        except BaseException:
            # A failed encoding leaves the containers it was in among the markers, and the
            # next encoding of one of them would be taken for a circular reference.
            markers.clear()
            raise

    return dumps


def sha(data: bytes) -> str:
    """The SHA-256 of bytes, in hex."""
    return sha256_hex(data)


# The kinds of problem a crash leaves (see Kind).
CRASH_KINDS = ("torn", "unsealed")


@dataclass
class Problem:
    """One finding of ``verify``: the 1-based line it concerns (0: the run as a whole)."""

    line: int
    seq: int | None
    reason: str
    kind: Kind = "tampered"


@dataclass
class VerifyResult:
    """The outcome of ``verify``; ``torn`` is set when the last line is incomplete.

    ``head`` is the last complete record's hash and ``seq`` its seq; ``unsealed`` the first
    and last seq of records after the head file's (a killed run), when there are any.
    """

    ok: bool
    records: int
    head: str | None
    problems: list[Problem] = field(default_factory=list)
    torn: dict | None = None
    seq: int | None = None
    unsealed: tuple[int, int] | None = None

    @property
    def tampered(self) -> list[Problem]:
        """The problems a crash cannot explain (resume refuses a run that has any)."""
        return [p for p in self.problems if p.kind not in CRASH_KINDS]


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


def read_anchor(anchor_text: str) -> tuple[int, str] | None:
    """(records the head covers, last hash) from the head file's text; None if unreadable.

    Also reads the earlier form `{"records": N, "head": H}`."""
    try:
        anchor = json.loads(anchor_text)
        if "seq" in anchor:
            count, head = int(anchor["seq"]) + 1, str(anchor["hash"])
        else:
            count, head = int(anchor["records"]), str(anchor["head"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return (count, head) if count >= 0 else None


def anchor_text(seq: int, record_hash: str) -> str:
    """The head file's text for a transcript that ends at record `seq` with `record_hash`
    (`json.dumps({"seq": seq, "hash": record_hash})`, written out: a hash is hex)."""
    return f'{{"seq": {int(seq)}, "hash": "{record_hash}"}}'



@dataclass
class _Anchor:
    """What the head file says: how many records it covers (None: it cannot be trusted)."""

    covered: int | None
    confirmed: int | None = None  # the line the head confirms as unchanged


def _check_anchor(anchor_text: str | None, hashes: list[str], broken: dict[int, str],
                  problems: list[Problem]) -> _Anchor:
    """Compare the head anchor: it catches an edited last line and a cut-off tail."""
    n = len(hashes)
    if anchor_text is None:
        problems.append(Problem(n + 1, None, "the head file is missing: nothing vouches for "
                                "where the transcript ends"))
        return _Anchor(None)
    if not anchor_text.strip():
        # Created with the transcript, written at the first sync: empty only when a run was
        # killed before it (then nothing is sealed), or when someone emptied it.
        return _Anchor(0)
    anchor = read_anchor(anchor_text)
    if anchor is None:
        problems.append(Problem(n + 1, None, "the head file is not readable"))
        return _Anchor(None)
    count, head = anchor
    if count > n:
        problems.append(Problem(n + 1, n, (
            f"the transcript is truncated: the head file records {count} records, "
            f"only {n} complete lines remain")))
        return _Anchor(None)
    if count and hashes[count - 1] != head:
        # As if line count+1 existed and its prev did not match: the same attribution applies.
        broken.setdefault(count + 1, "the head file")
        return _Anchor(None)
    return _Anchor(count, count or None)


def _check_tail(anchor: _Anchor, recs: list[dict | None], problems: list[Problem]
                ) -> tuple[set[int], tuple[int, int] | None]:
    """Records after the head: appended after a stop, or left unsealed by a killed run.

    Returns the lines explained here and the seqs of an unsealed tail."""
    covered, n = anchor.covered, len(recs)
    if covered is None or covered >= n:
        return set(), None
    first, last = recs[covered], recs[-1]
    first_seq = first.get("seq") if first else None
    last_seq = last.get("seq") if last else None
    line = covered + 1
    stop = recs[covered - 1] if covered else None
    if stop is not None and stop.get("event") == "run_finished":
        problems.append(Problem(line, first_seq, (
            f"record {first_seq} (line {line}) was appended after the run stopped: the head "
            f"file ends the record at record {stop.get('seq')} (line {covered}, run_finished)")))
        return {line}, None
    if covered == 0 and any(
            r is not None and r.get("event") == "run_finished" for r in recs):
        problems.append(Problem(line, first_seq, (
            "the head file is empty, though the run recorded a stop: a stop always writes "
            "it, so it was emptied")))
        return {line}, None
    lines = f"line {line}" if line == n else f"lines {line}–{n}"
    records = f"record {first_seq}" if line == n else f"records {first_seq}–{last_seq}"
    after = f"the head (record {stop.get('seq')})" if stop is not None else \
        "the head, which is empty"
    problems.append(Problem(line, first_seq, (
        f"{records} ({lines}) come after {after} and are not sealed: left by a run killed "
        "before it synced them, or appended since; runbook resume continues the run from "
        "them"), "unsealed"))
    seqs = (first_seq, last_seq) if isinstance(first_seq, int) and \
        isinstance(last_seq, int) else None
    return {line}, seqs


def _check_external(expected: str | None, recs: list[dict | None], hashes: list[str],
                    problems: list[Problem]) -> None:
    """Compare the transcript's last record with a head hash kept elsewhere."""
    if expected is None or not hashes or hashes[-1] == expected:
        return
    n = len(hashes)
    if expected in hashes:
        at = hashes.index(expected) + 1
        kept = (recs[at - 1] or {}).get("seq")
        problems.append(Problem(at + 1, (recs[at] or {}).get("seq"), (
            f"the head you gave is record {kept} (line {at}); the records after it (lines "
            f"{at + 1}–{n}) were added since")))
        return
    problems.append(Problem(n, (recs[-1] or {}).get("seq"), (
        f"no record has the head you gave ({expected[:12]}…): the transcript was rewritten "
        f"or cut since that head was kept (it now ends with {hashes[-1][:12]}…)")))


def _check_snapshot(snapshot: bytes | None, recs: list[dict | None],
                    problems: list[Problem]) -> None:
    """The runbook's copy kept with the run must be what `run_started.sha256` names."""
    started = recs[0] if recs else None
    if started is None or started.get("event") != "run_started" or \
            not isinstance(started.get("sha256"), str):
        return
    if snapshot is None:
        problems.append(Problem(1, started.get("seq"), (
            "the runbook snapshot (runbook.snapshot) is missing; run_started records the "
            "runbook's SHA-256")))
    elif sha(snapshot) != started["sha256"]:
        problems.append(Problem(1, started.get("seq"), (
            f"the runbook snapshot (runbook.snapshot) was changed: its SHA-256 is "
            f"{sha(snapshot)[:12]}…, run_started records {started['sha256'][:12]}…")))


def _attribute(broken: dict[int, str], bad: set[int], recs: list[dict | None],
               anchored: int | None, problems: list[Problem], explained: set[int]) -> None:
    """Name the edited line for each broken link not already explained by a bad line.

    A broken link at n means line n-1 changed, or line n's own ``prev`` did; when the next
    link breaks too, or the head file vouches for line n-1, it is line n itself.
    """
    done: set[int] = set()
    for n in sorted(broken):
        if n in done or n in bad or n - 1 in bad or n in explained:
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


# `verify_chain(snapshot=NO_SNAPSHOT)`: the store keeps no snapshot to compare.
NO_SNAPSHOT = b"\0no snapshot"


def verify_chain(data: bytes, anchor_text: str | None, read_log: LogReader, *,
                 snapshot: bytes | None = NO_SNAPSHOT,
                 expected_head: str | None = None) -> VerifyResult:
    """Recompute the hash chain and output digests of a transcript's bytes.

    `anchor_text` is the head file's text (None: the file is missing); `snapshot` the
    runbook's copy kept with the run (None: missing); `expected_head` a head hash kept
    elsewhere (`verify --head`). Problems come sorted by line, so ``problems[0]`` names the
    first bad record.
    """
    lines, torn = split_lines(data)
    if not lines and torn is None:
        empty = Problem(1, None, "the transcript is empty: not even run_started was kept")
        return VerifyResult(False, 0, None, [empty])
    hashes = [sha(line) for line in lines]
    recs = [parse_line(line) for line in lines]
    problems: list[Problem] = []
    bad = _check_records(recs, problems)
    broken = _broken_links(recs, hashes)
    anchor = _check_anchor(anchor_text, hashes, broken, problems)
    explained, unsealed = _check_tail(anchor, recs, problems)
    _attribute(broken, bad, recs, anchor.confirmed, problems, explained)
    _check_external(expected_head, recs, hashes, problems)
    if snapshot != NO_SNAPSHOT:
        _check_snapshot(snapshot, recs, problems)
    _check_logs(recs, read_log, problems)
    if torn is not None:
        n = len(lines) + 1
        reason = f"the last line is torn (incomplete, {len(torn)} bytes)"
        problems.append(Problem(n, None, reason, "torn"))
    problems.sort(key=lambda p: p.line)
    head = hashes[-1] if hashes else None
    last = recs[-1] if recs else None
    seq = last.get("seq") if last is not None and type(last.get("seq")) is int else None
    return VerifyResult(not problems, len(lines), head, problems, torn_info(torn), seq,
                        unsealed)
