"""Tests for the hash-chained run transcript of the local store (runbook_lang.store.files and
runbook_lang.store.chain)."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook_lang.store import RunRef
from runbook_lang.store.chain import ZERO, VerifyResult
from runbook_lang.store.files import FileRunWriter as TranscriptWriter
from runbook_lang.store.files import LocalStore, new_run_id

ROOT = Path(__file__).resolve().parents[1]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(path: Path) -> VerifyResult:
    """`runbook verify PATH` of the local store: exactly the transcript (or run dir) named."""
    path = Path(path)
    transcript = path if path.is_file() else path / "transcript.jsonl"
    return LocalStore().verify(RunRef(path.name, str(transcript.parent), transcript))


def find_run_dir(ref: str, base: Path | None) -> Path | None:
    found = LocalStore(base).resolve(ref)
    return Path(found.location) if found is not None else None


def list_runs(base: Path | None) -> list[Path]:
    return [Path(run.location) for run in LocalStore(base).runs()]


def read_records(path: Path) -> tuple[list[dict], dict | None]:
    store = LocalStore()
    records, torn = store.records(store.resolve(str(path)))
    return records, torn.to_json() if torn else None


def runs_root(base: Path | None) -> Path:
    return LocalStore(base).root


def make_run(run_dir: Path, n: int = 5, close: bool = True) -> TranscriptWriter:
    """A small run with string, nested and numeric fields in every record."""
    w = TranscriptWriter(run_dir, "20261129T161342Z-3f9a1c")
    w.append("run_started", runbook="deploy.runbook", params={"version": "1.4.2"})
    for i in range(1, n - 1):
        w.append("step_started", step=f"deploy[web{i}]", title="Deploy web", attempt=1)
    w.append("run_finished", status="succeeded", exit_code=0, duration_ms=1234)
    if close:
        w.close()
    return w


def lines_of(run_dir: Path) -> list[bytes]:
    return (run_dir / "transcript.jsonl").read_bytes().splitlines(keepends=True)


def write_lines(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / "transcript.jsonl").write_bytes(b"".join(lines))


def first_problem(run_dir: Path):
    result = verify(run_dir)
    assert not result.ok
    assert result.problems
    return result.problems[0]


# --- writing ------------------------------------------------------------------------------


def test_long_chain_verifies(tmp_path):
    w = TranscriptWriter(tmp_path / "run", "r1")
    for i in range(500):
        w.append("note", step="s", text=f"line {i} é ✓ \"quoted\" \\ \n", n=i, ok=i % 2 == 0)
        if i % 100 == 0:
            w.sync()
    w.close()
    result = verify(tmp_path / "run")
    assert result.ok, result.problems
    assert result.records == 500
    assert result.head == w.head
    assert json.loads((tmp_path / "run" / "head").read_text()) == {"seq": 499, "hash": w.head}
    assert verify(tmp_path / "run" / "transcript.jsonl").ok


def test_record_format(tmp_path):
    w = make_run(tmp_path / "run", close=False)
    rec = w.append("note", text="ünïcode")
    w.close()
    assert list(rec)[:5] == ["seq", "time", "run_id", "event", "prev"]
    assert rec["seq"] == 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["time"])
    raw = lines_of(tmp_path / "run")
    assert json.loads(raw[0])["prev"] == ZERO
    for before, after in zip(raw, raw[1:], strict=False):
        assert json.loads(after)["prev"] == sha(before.rstrip(b"\n"))
    assert "ünïcode".encode() in raw[-1]  # ensure_ascii=False
    assert b", " not in raw[0] and b": " not in raw[0]  # compact separators
    assert (tmp_path / "run" / "output").is_dir()


def test_reserved_fields_and_closed_writer(tmp_path):
    w = TranscriptWriter(tmp_path / "run", "r1")
    with pytest.raises(ValueError, match="reserved"):
        w.append("note", seq=3)
    w.close()
    w.close()
    with pytest.raises(ValueError):
        w.append("note")


def test_new_writer_refuses_existing_transcript(tmp_path):
    make_run(tmp_path / "run")
    with pytest.raises(FileExistsError):
        TranscriptWriter(tmp_path / "run", "other")


def test_masking_of_nested_strings(tmp_path):
    w = TranscriptWriter(tmp_path / "run", "r1", mask=lambda s: s.replace("hunter2", "***"))
    rec = w.append(
        "run_started",
        command="login --password hunter2",
        params={"token": "hunter2", "nested": [{"x": "a-hunter2-b"}, ("hunter2", 5)]},
        headers={"hunter2": "key"},
        path=Path("/srv/hunter2"),
        count=2,
        flag=True,
        none=None,
    )
    w.close()
    assert rec["command"] == "login --password ***"
    assert rec["params"] == {"token": "***", "nested": [{"x": "a-***-b"}, ["***", 5]]}
    assert rec["headers"] == {"***": "key"}
    assert rec["path"] == "/srv/***"
    assert (rec["count"], rec["flag"], rec["none"]) == (2, True, None)
    assert b"hunter2" not in (tmp_path / "run" / "transcript.jsonl").read_bytes()
    assert verify(tmp_path / "run").ok


def test_output_paths(tmp_path):
    w = TranscriptWriter(tmp_path / "run", "r1")
    out, err = (w.output_path(3, "deploy[web1]", s) for s in ("stdout", "stderr"))
    assert out == tmp_path / "run" / "output" / "00003-deploy_web1_.stdout.log"
    assert err == tmp_path / "run" / "output" / "00003-deploy_web1_.stderr.log"
    assert w.output_path(12, "a b/c.d-e_f", "stdout").name == "00012-a_b_c.d-e_f.stdout.log"
    w.close()


# --- run ids and lookup -------------------------------------------------------------------


def test_run_ids_sort_by_time_and_are_unique():
    times = [1_700_000_000 + d for d in (0, 1, 59, 3600, 86_400 * 40, 86_400 * 400)]
    ids = [new_run_id(t) for t in times]
    assert sorted(ids) == ids
    assert re.fullmatch(r"\d{8}T\d{9}Z-[0-9a-f]{6}", ids[0])
    assert ids[0].startswith("20231114T221320000Z-")
    # Runs started within one second still sort by start time.
    assert new_run_id(1_700_000_000.001) < new_run_id(1_700_000_000.002)
    assert len({new_run_id() for _ in range(1000)}) == 1000


def test_runs_root_find_and_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runs_root(None) == tmp_path / ".runbook" / "runs"
    assert runs_root(tmp_path / "x") == tmp_path / "x"
    assert list_runs(None) == []
    ids = [new_run_id(1_700_000_000 + i * 10) for i in range(3)]
    for run_id in ids:
        TranscriptWriter(runs_root(None) / run_id, run_id).close()
    (runs_root(None) / "stray").mkdir()  # not a run: no transcript
    assert [d.name for d in list_runs(None)] == ids[::-1]
    run_dir = runs_root(None) / ids[1]
    assert find_run_dir(ids[1], None) == run_dir
    assert find_run_dir(str(run_dir), None) == run_dir
    assert find_run_dir(str(run_dir / "transcript.jsonl"), None) == run_dir
    assert find_run_dir("nope", None) is None
    other = tmp_path / "elsewhere"
    TranscriptWriter(other / "r9", "r9").close()
    assert find_run_dir("r9", other) == other / "r9"
    assert [d.name for d in list_runs(other)] == ["r9"]


# --- tampering ----------------------------------------------------------------------------


@pytest.mark.slow  # verifies the transcript once per byte of it
@pytest.mark.parametrize("anchored", [True, False])
@pytest.mark.parametrize("xor", [0x01, 0x20, 0x80])
def test_every_single_byte_edit_is_caught_at_its_line(tmp_path, xor, anchored):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    original = lines_of(run_dir)
    data = b"".join(original)
    line_of = [n for n, raw in enumerate(original, 1) for _ in raw]
    if not anchored:  # without the head file only the chain itself covers lines 1..n-1
        (run_dir / "head").unlink()
        data, line_of = data[: -len(original[-1])], line_of[: -len(original[-1])]
        data += original[-1]
    for pos in range(len(line_of)):
        edited = bytearray(data)
        edited[pos] ^= xor
        (run_dir / "transcript.jsonl").write_bytes(bytes(edited))
        problem = first_problem(run_dir)
        assert problem.line == line_of[pos], (pos, bytes([data[pos]]), problem)


@pytest.mark.parametrize("line", [1, 3, 5])
def test_edit_inside_a_string_value(tmp_path, line):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    raw = lines_of(run_dir)
    rec = json.loads(raw[line - 1])
    key = {1: "runbook", 3: "step", 5: "status"}[line]
    rec[key] += "x"
    raw[line - 1] = json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    write_lines(run_dir, raw)
    problem = first_problem(run_dir)
    assert problem.line == line and problem.seq == line - 1
    assert f"(line {line}) was edited" in problem.reason


def test_edited_prev_field_is_blamed_on_its_own_line(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    raw = lines_of(run_dir)
    rec = json.loads(raw[2])
    rec["prev"] = "f" * 64
    raw[2] = json.dumps(rec, separators=(",", ":")).encode() + b"\n"
    write_lines(run_dir, raw)
    problems = verify(run_dir).problems
    assert [p.line for p in problems] == [3]


@pytest.mark.parametrize("index", [0, 2, 4])
def test_deleted_line(tmp_path, index):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    raw = lines_of(run_dir)
    del raw[index]
    write_lines(run_dir, raw)
    problem = first_problem(run_dir)
    if index == 4:  # only the head anchor knows the last line existed
        assert problem.line == 5 and "truncated" in problem.reason
    else:
        assert problem.line == index + 1
        assert "missing or out of order" in problem.reason
        assert f"record {index} " in problem.reason


def test_deleted_line_without_head_anchor_still_caught_in_the_middle(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    (run_dir / "head").unlink()
    raw = lines_of(run_dir)
    del raw[1]
    write_lines(run_dir, raw)
    assert first_problem(run_dir).line == 2


def test_swapped_lines(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    raw = lines_of(run_dir)
    raw[1], raw[2] = raw[2], raw[1]
    write_lines(run_dir, raw)
    problem = first_problem(run_dir)
    assert problem.line == 2 and "out of order" in problem.reason


def test_recomputed_chain_after_last_sync_is_caught_by_head(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    raw = lines_of(run_dir)[:4]
    rec = json.loads(raw[3])  # forge a new last line whose prev is valid
    rec.update(seq=4, event="run_finished", prev=sha(raw[3].rstrip(b"\n")), status="failed")
    raw.append(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
    write_lines(run_dir, raw)
    problem = first_problem(run_dir)
    assert problem.line == 5 and "head file" in problem.reason


def test_truncated_mid_line_is_torn(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir, close=False).sync()
    data = (run_dir / "transcript.jsonl").read_bytes()
    cut = data[: len(data) - 20]
    (run_dir / "transcript.jsonl").write_bytes(cut)
    result = verify(run_dir)
    assert not result.ok
    torn = cut[cut.rindex(b"\n") + 1:]
    assert result.torn == {"bytes": len(torn), "sha256": sha(torn)}
    assert any(p.line == 5 and "torn" in p.reason for p in result.problems)
    # The head anchor says 5 records were synced, so this is also reported as truncation.
    assert any("truncated" in p.reason for p in result.problems)
    assert result.records == 4


def test_torn_tail_after_crash_is_the_only_problem(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir, close=False).sync()  # a crash while writing the next line
    with open(run_dir / "transcript.jsonl", "ab") as f:
        f.write(b'{"seq":5,"time":"2026-')
    result = verify(run_dir)
    reasons = [p.reason for p in result.problems]
    assert reasons == ["the last line is torn (incomplete, 22 bytes)"]
    assert result.torn == {"bytes": 22, "sha256": sha(b'{"seq":5,"time":"2026-')}


@pytest.mark.parametrize(
    "garbage", [b"garbage", b"garbage\n", b"\n", b"{}\n", b'{"seq":5}\n', b"\x00\x00\x00"]
)
def test_appended_garbage(tmp_path, garbage):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    with open(run_dir / "transcript.jsonl", "ab") as f:
        f.write(garbage)
    problem = first_problem(run_dir)
    assert problem.line == 6


def test_appended_forged_record_with_valid_chain_is_not_torn(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    raw = lines_of(run_dir)
    rec = json.loads(raw[-1])
    rec.update(seq=5, prev="1" * 64)
    write_lines(run_dir, [*raw, json.dumps(rec).encode() + b"\n"])
    result = verify(run_dir)
    assert not result.ok and result.torn is None
    assert result.problems[0].line == 6


# --- output logs --------------------------------------------------------------------------


def run_with_logs(run_dir: Path, top_level_log: bool = False) -> TranscriptWriter:
    w = TranscriptWriter(run_dir, "r1")
    w.append("run_started", runbook="x.runbook")
    started = w.append("command_started", step="switch", command="echo hi", cwd="/")
    out, err = (w.output_path(started["seq"], "switch", s) for s in ("stdout", "stderr"))
    out.write_bytes(b"hi\n")
    err.write_bytes(b"")
    streams = {}
    for name, path in (("stdout", out), ("stderr", err)):
        data = path.read_bytes()
        streams[name] = {"bytes": len(data), "sha256": sha(data), "tail": data.decode()}
        if not top_level_log:
            streams[name]["log"] = str(path.relative_to(run_dir))
    extra = {}
    if top_level_log:
        extra["log"] = {n: str(p.relative_to(run_dir)) for n, p in (("stdout", out),
                                                                      ("stderr", err))}
    w.append("command_finished", step="switch", command="echo hi", cwd="/", exit_code=0,
             duration_ms=3, **streams, **extra)
    w.append("run_finished", status="succeeded", exit_code=0)
    w.close()
    return w


@pytest.mark.parametrize("top_level_log", [False, True])
def test_output_logs_verify_and_edits_are_caught(tmp_path, top_level_log):
    run_dir = tmp_path / "run"
    run_with_logs(run_dir, top_level_log)
    assert verify(run_dir).ok
    log = run_dir / "output" / "00001-switch.stdout.log"
    log.write_bytes(b"hI\n")
    problem = first_problem(run_dir)
    assert problem.line == 3 and problem.seq == 2
    assert "output/00001-switch.stdout.log changed: sha256" in problem.reason
    log.write_bytes(b"hi\n")
    assert verify(run_dir).ok
    (run_dir / "output" / "00001-switch.stderr.log").unlink()
    problem = first_problem(run_dir)
    assert problem.reason == "output log output/00001-switch.stderr.log is missing"


def test_output_log_size_and_escape(tmp_path):
    run_dir = tmp_path / "run"
    w = TranscriptWriter(run_dir, "r1")
    (run_dir / "output" / "a.log").write_bytes(b"abc")
    w.append("command_finished", stdout={"bytes": 4, "log": "output/a.log"},
             stderr={"log": "../../etc/passwd"})
    w.close()
    reasons = [p.reason for p in verify(run_dir).problems]
    assert reasons == ["output log output/a.log changed: 3 bytes, recorded 4",
                       "output log ../../etc/passwd is outside the run directory"]


def test_missing_transcript(tmp_path):
    result = verify(tmp_path / "nothing")
    assert not result.ok and "transcript.jsonl is missing" in result.problems[0].reason


# --- resume -------------------------------------------------------------------------------


def test_reopen_cuts_torn_line_and_continues_chain(tmp_path):
    run_dir = tmp_path / "run"
    first = make_run(run_dir, close=False)
    first.sync()
    torn = b'{"seq":5,"time":"2026-11-29T16:13:42.123Z","run_id":"20261129T'
    with open(run_dir / "transcript.jsonl", "ab") as f:
        f.write(torn)
    assert verify(run_dir).torn == {"bytes": len(torn), "sha256": sha(torn)}
    w, info = TranscriptWriter.reopen(run_dir)
    assert info == {"bytes": len(torn), "sha256": sha(torn)}
    assert w.run_id == "20261129T161342Z-3f9a1c" and w.head == first.head
    rec = w.append("run_resumed", operator={"user": "alice", "host": "h"}, torn=info)
    assert rec["seq"] == 5 and rec["prev"] == first.head
    w.append("run_finished", status="succeeded", exit_code=0)
    w.close()
    result = verify(run_dir)
    assert result.ok, result.problems
    assert result.records == 7
    records, tail = read_records(run_dir)
    assert tail is None
    assert [r["seq"] for r in records] == list(range(7))
    assert records[5]["torn"] == info


def test_reopen_cuts_invalid_last_line_ending_in_newline(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir, close=False)
    with open(run_dir / "transcript.jsonl", "ab") as f:
        f.write(b"\x00\x00\x00\n")
    w, info = TranscriptWriter.reopen(run_dir)
    assert info == {"bytes": 4, "sha256": sha(b"\x00\x00\x00\n")}
    w.append("run_resumed", torn=info)
    w.close()
    assert verify(run_dir).ok


def test_reopen_without_torn_line(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    w, info = TranscriptWriter.reopen(run_dir, mask=lambda s: s.replace("pw", "***"))
    assert info is None
    assert w.append("note", text="pw")["text"] == "***"
    w.close()
    result = verify(run_dir)
    assert result.ok and result.records == 6


def test_read_records_is_tolerant(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    raw = lines_of(run_dir)
    raw[1] = b"not json\n"
    write_lines(run_dir, [*raw, b'{"seq":'])
    records, torn = read_records(run_dir / "transcript.jsonl")
    assert [r["seq"] for r in records] == [0, 2, 3, 4]
    assert torn == {"bytes": 7, "sha256": sha(b'{"seq":')}


# --- crash --------------------------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from runbook_lang.store.files import FileRunWriter
w = FileRunWriter(Path(sys.argv[1]), "crash")
i = 0
while True:
    w.append("note", step="s", text="x" * (i % 5000), i=i)
    if i % 50 == 0:
        w.sync()
    if i == 200:
        print("ready", flush=True)
    i += 1
"""


def test_sigkill_mid_run_leaves_a_verifiable_prefix(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run_dir)],
                             stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline() == b"ready\n"
        time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    result = verify(run_dir)
    assert result.records > 200
    # Records after the last sync are unsealed, as a torn line is torn: what a crash leaves.
    assert not result.tampered, result.problems
    assert all(p.kind in ("torn", "unsealed") for p in result.problems)
    w, info = TranscriptWriter.reopen(run_dir)
    w.append("run_resumed", torn=info)
    w.close()
    assert verify(run_dir).ok
