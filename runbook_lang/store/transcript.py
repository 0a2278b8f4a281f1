"""The run record: a hash-chained JSON-lines transcript per run (LANGUAGE.md §9).

Each run has a directory ``RUN_DIR`` holding ``transcript.jsonl``, ``output/`` (one log per
command stream) and ``head``, a small anchor file naming the hash of the last synced line
and the record count, so that an edit of the last line (which no later ``prev`` covers) or
a cut-off tail is still detected.
"""

import hashlib
import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

TRANSCRIPT = "transcript.jsonl"
HEAD = "head"
HEAD_WIDTH = 128
ZERO = "0" * 64
_COMMON = ("seq", "time", "run_id", "event", "prev")
_RESERVED = frozenset(_COMMON)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
Mask = Callable[[str], str]


def _identity(text: str) -> str:
    return text


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_run_id(now: float | None = None) -> str:
    """A run id like ``20261129T161342123Z-3f9a1c``: UTC start to the millisecond, then 6
    random hex digits.

    The fixed-width timestamp first makes lexicographic order equal start-time order, also
    for runs started within the same second.
    """
    moment = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(moment))
    millis = int(moment * 1000) % 1000
    return f"{stamp}{millis:03d}Z-{secrets.token_hex(3)}"


def runs_root(base: Path | None) -> Path:
    """Where run directories live: ``base`` if given, else ``./.runbook/runs``."""
    return Path(base) if base is not None else Path.cwd() / ".runbook" / "runs"


def _masked(value: object, mask: Mask) -> object:
    """Copy ``value`` with every string in it (nested keys too) passed through ``mask``."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {_masked(k, mask): _masked(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, mask) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Paths and other objects become text here, so that the mask sees what JSON will hold.
    return mask(str(value))


class TranscriptWriter:
    """Appends events to ``RUN_DIR/transcript.jsonl``, each line chained to the one before.

    ``append`` writes each line with one ``write(2)`` on an ``O_APPEND`` descriptor, so a
    line reaches the file whole or (after a crash mid-write) as a torn tail; it does not
    fsync, which keeps it cheap. ``sync`` makes everything so far durable and moves ``head``.
    Attributes: ``run_dir``, ``run_id``, ``head`` (SHA-256 hex of the last line written).
    """

    def __init__(self, run_dir: Path, run_id: str, mask: Mask = _identity) -> None:
        run_dir = Path(run_dir)
        (run_dir / "output").mkdir(parents=True, exist_ok=True)
        # O_EXCL: a fresh run must never append to (and so break) another run's chain.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        self._setup(run_dir, run_id, mask, os.open(run_dir / TRANSCRIPT, flags, 0o644), 0, ZERO)

    def _setup(self, run_dir: Path, run_id: str, mask: Mask, fd: int, seq: int, head: str) -> None:
        self.run_dir, self.run_id, self.head = run_dir, run_id, head
        self._fd: int | None = fd
        # The head anchor is rewritten in place after every fsync: one small write, no new
        # file and rename per step (that doubled the cost of recording a step).
        self._head_fd = os.open(run_dir / HEAD, os.O_WRONLY | os.O_CREAT, 0o644)
        self._seq, self._second, self._stamp = seq, -1, ""
        self._mask = None if mask is _identity else mask
        # One encoder built once: json.dumps with options builds a new one per call.
        self._encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                        default=str).encode

    @classmethod
    def reopen(cls, run_dir: Path, mask: Mask = _identity) -> tuple[Self, dict | None]:
        """Continue an existing run's chain (for resume), cutting off a torn last line.

        Returns the writer and ``{'bytes': n, 'sha256': hex}`` of what was cut, or None.
        """
        run_dir = Path(run_dir)
        path = run_dir / TRANSCRIPT
        lines, torn = _split(path.read_bytes())
        if torn is not None:
            os.truncate(path, sum(len(line) + 1 for line in lines))
        first, last = (_parse(lines[0]), _parse(lines[-1])) if lines else (None, None)
        run_id = first.get("run_id", run_dir.name) if first else run_dir.name
        seq = last["seq"] + 1 if last and isinstance(last.get("seq"), int) else len(lines)
        (run_dir / "output").mkdir(parents=True, exist_ok=True)
        writer = cls.__new__(cls)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        writer._setup(run_dir, run_id, mask, fd, seq, _sha(lines[-1]) if lines else ZERO)
        return writer, _torn_info(torn)

    def _now(self) -> str:
        """UTC RFC 3339 time with milliseconds; the per-second prefix is formatted once."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def append(self, event: str, **fields: object) -> dict:
        """Write one event and return its record (with ``fields`` masked)."""
        if not _RESERVED.isdisjoint(fields):
            raise ValueError(f"reserved field(s): {sorted(_RESERVED.intersection(fields))}")
        if self._fd is None:
            raise ValueError("transcript is closed")
        if self._mask is not None:
            fields = {k: _masked(v, self._mask) for k, v in fields.items()}
        record = {"seq": self._seq, "time": self._now(), "run_id": self.run_id,
                  "event": event, "prev": self.head, **fields}
        line = self._encode(record).encode()
        data = memoryview(line + b"\n")
        while data:  # a regular file takes it in one go; loop for the rare short write
            data = data[os.write(self._fd, data):]
        self.head = _sha(line)
        self._seq += 1
        return record

    def sync(self) -> None:
        """Make all appended lines durable, then point the ``head`` anchor at the last one."""
        if self._fd is None:
            return
        os.fsync(self._fd)
        # Written only after the fsync, so the anchor never names a line that could be lost.
        # Fixed width, so each write covers the last one whole (JSON ignores the padding).
        anchor = json.dumps({"records": self._seq, "head": self.head})
        os.pwrite(self._head_fd, (anchor.ljust(HEAD_WIDTH - 1) + "\n").encode(), 0)

    def close(self) -> None:
        """Sync and close; closing twice is harmless."""
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            os.close(self._head_fd)
            self._fd = None

    def output_paths(self, seq: int, step: str) -> tuple[Path, Path]:
        """The stdout and stderr log paths for the command recorded at ``seq`` in ``step``."""
        # A `for` step's name holds its item, which may be a secret: file names are masked
        # like everything else the run writes.
        if self._mask is not None:
            step = self._mask(step)
        stem = self.run_dir / "output" / f"{seq:05d}-{_UNSAFE.sub('_', step)}"
        return Path(f"{stem}.stdout.log"), Path(f"{stem}.stderr.log")


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


def _parse(line: bytes) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:  # covers bad UTF-8 too
        return None
    return value if isinstance(value, dict) else None


def _split(data: bytes) -> tuple[list[bytes], bytes | None]:
    """Complete lines (without newlines) and the torn tail, if any.

    The tail is what follows the last newline, or else a last line that is not valid JSON
    (a crash can leave garbage such as NUL bytes before the newline reaches the disk).
    """
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        return lines, tail
    if lines and _parse(lines[-1]) is None:
        return lines[:-1], lines[-1] + b"\n"
    return lines, None


def _torn_info(torn: bytes | None) -> dict | None:
    return None if torn is None else {"bytes": len(torn), "sha256": _sha(torn)}


def _transcript_path(path: Path) -> Path:
    path = Path(path)
    return path / TRANSCRIPT if path.is_dir() else path


def read_records(path: Path) -> tuple[list[dict], dict | None]:
    """Every complete, parseable record of a transcript (or run dir), and torn-tail info."""
    lines, torn = _split(_transcript_path(path).read_bytes())
    return [r for r in map(_parse, lines) if r is not None], _torn_info(torn)


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
        elif missing := [k for k in _COMMON if k not in rec]:
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


def _check_anchor(run_dir: Path, hashes: list[str], broken: dict[int, str],
                  problems: list[Problem]) -> int | None:
    """Compare the ``head`` file: it catches an edited last line and a cut-off tail.

    Returns the line the anchor confirms as unchanged, if any.
    """
    head_file = run_dir / HEAD
    # Never synced or emptied by a crash: then nothing anchors the tail.
    if not head_file.is_file() or not (text := head_file.read_text()).strip():
        return None
    try:
        anchor = json.loads(text)
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
        digest = rec.get(stream) if isinstance(rec.get(stream), dict) else {}
        rel = digest.get("log")
        if rel is None and isinstance(top, dict):
            rel = top.get(stream)
        if rel is None and isinstance(top, str) and top.endswith(f".{stream}.log"):
            rel = top
        if isinstance(rel, str) and rel not in seen:
            seen.add(rel)
            yield rel, digest


def _log_problem(run_dir: Path, rel: str, digest: dict) -> str | None:
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        return f"output log {rel} is outside the run directory"
    path = run_dir / rel
    if not path.is_file():
        return f"output log {rel} is missing"
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    if "sha256" in digest and sha.hexdigest() != digest["sha256"]:
        return f"output log {rel} changed: sha256 {sha.hexdigest()}, recorded {digest['sha256']}"
    if "bytes" in digest and size != digest["bytes"]:
        return f"output log {rel} changed: {size} bytes, recorded {digest['bytes']}"
    return None


def _check_logs(run_dir: Path, recs: list[dict | None], problems: list[Problem]) -> None:
    for n, rec in enumerate(recs, 1):
        if rec is not None and rec.get("event") == "command_finished":
            for rel, digest in _log_refs(rec):
                if reason := _log_problem(run_dir, rel, digest):
                    problems.append(Problem(n, rec.get("seq"), reason))


def verify(path: Path) -> VerifyResult:
    """Recompute the hash chain and output digests of a run (transcript file or run dir).

    Problems come sorted by line, so ``problems[0]`` names the first bad record.
    """
    tpath = _transcript_path(path)
    if not tpath.is_file():
        return VerifyResult(False, 0, None, [Problem(0, None, f"{tpath} does not exist")])
    lines, torn = _split(tpath.read_bytes())
    hashes = [_sha(line) for line in lines]
    recs = [_parse(line) for line in lines]
    problems: list[Problem] = []
    bad = _check_records(recs, problems)
    broken = _broken_links(recs, hashes)
    anchored = _check_anchor(tpath.parent, hashes, broken, problems)
    _attribute(broken, bad, recs, anchored, problems)
    _check_logs(tpath.parent, recs, problems)
    if torn is not None:
        n = len(lines) + 1
        reason = f"line {n} is torn (incomplete last line, {len(torn)} bytes)"
        problems.append(Problem(n, None, reason))
    problems.sort(key=lambda p: p.line)
    head = hashes[-1] if hashes else None
    return VerifyResult(not problems, len(lines), head, problems, _torn_info(torn))


def find_run_dir(ref: str, base: Path | None) -> Path | None:
    """Resolve a run id (under ``runs_root(base)``), a run dir or a transcript path."""
    path = Path(ref)
    if path.is_file():
        return path.parent
    for candidate in (path, runs_root(base) / ref):
        if (candidate / TRANSCRIPT).is_file():
            return candidate
    return None


def list_runs(base: Path | None) -> list[Path]:
    """Run directories under ``runs_root(base)``, newest first (run ids sort by start time)."""
    root = runs_root(base)
    if not root.is_dir():
        return []
    runs = [d for d in root.iterdir() if (d / TRANSCRIPT).is_file()]
    return sorted(runs, key=lambda d: d.name, reverse=True)
