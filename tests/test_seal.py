"""The sealed transcript (LANGUAGE.md §9, §13): `runbook verify` on a record someone changed.

One run of three steps, sealed with the operator's key; each test tampers with a copy and
checks that `verify` fails naming the first bad place, or, where the chain alone cannot see
the change (a tail cut with the head rewritten, a whole chain rewritten), that it passes on
the chain alone and fails with a head kept elsewhere (`--head`) or the signed head
(`--signers`). Also what a crash leaves: records after the last sync are unsealed, `resume`
takes them over and records that it did, and a stopped run cannot be extended.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
from pathlib import Path

import pytest
from conftest import OPERATOR, Workspace, events, read_transcript, signal_mid_step, wait_for
from keys import fingerprint, make_key, public, write_signers

from runbook_lang.trust import seal_head

STEPS = Path(__file__).resolve().parent / "fixtures" / "signed" / "steps.runbook"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    return {OPERATOR: make_key(root / OPERATOR, "ed25519"),
            "mallory": make_key(root / "mallory", "rsa")}


@pytest.fixture(scope="module")
def sealed(tmp_path_factory, keys) -> tuple[Workspace, Path]:
    """One finished, sealed run (14 records), shared read-only."""
    ws = Workspace(tmp_path_factory.mktemp("sealed"))
    shutil.copy(STEPS, ws.root / STEPS.name)
    write_signers(ws.root / "allowed_signers", f"{OPERATOR} {public(keys[OPERATOR])}")
    result = ws.runbook("run", STEPS.name, "--sign-with", str(keys[OPERATOR]))
    assert result.exit_code == 0, result.output
    (run_dir,) = result.run_dirs()
    return ws, run_dir


@pytest.fixture
def copy(sealed, tmp_path) -> Path:
    _, run_dir = sealed
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def lines_of(run_dir: Path) -> list[bytes]:
    return (run_dir / "transcript.jsonl").read_bytes().split(b"\n")[:-1]


def write_lines(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / "transcript.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def rechain(run_dir: Path, lines: list[bytes]) -> None:
    """Write `lines` with every prev recomputed and a head file to match: what someone who
    rewrites the whole record does."""
    out, prev = [], "0" * 64
    for line in lines:
        record = json.loads(line)
        record["prev"] = prev
        out.append(encode(record))
        prev = sha(out[-1])
    write_lines(run_dir, out)
    last = json.loads(out[-1])
    (run_dir / "head").write_text(json.dumps({"seq": last["seq"], "hash": prev}))


def verify(ws: Workspace, run_dir: Path, *args: str):
    return ws.runbook("verify", str(run_dir), *args)


def failed(result, first: str) -> None:
    """`verify` exits 1 and its first line names the first bad place."""
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[0].startswith(f"FAILED: {first}"), result.stdout


def test_the_sealed_run_verifies_with_its_signers_and_its_head(sealed, keys):
    ws, run_dir = sealed
    head = sha(lines_of(run_dir)[-1])
    result = verify(ws, run_dir, "--signers", "allowed_signers", "--head", head)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "ok: 14 records; chain, head, snapshot and output logs intact\n"
        f"head: {head}\nthe head you gave is the last record\n"
        f"sealed by {OPERATOR} (key {fingerprint(keys[OPERATOR])}) at record 13\n")
    assert json.loads((run_dir / "head").read_text()) == {"seq": 13, "hash": head}
    seal = json.loads((run_dir / "head.sig").read_text())
    assert json.loads(seal["statement"])["hash"] == head


# ---------------------------------------------------------------------- the chain catches


def test_an_edited_record(sealed, copy):
    lines = lines_of(copy)
    lines[4] = lines[4].replace(b'"status":"succeeded"', b'"status":"failed"')
    write_lines(copy, lines)
    failed(verify(sealed[0], copy), "record 4 (line 5) was edited: its hash does not match "
                                    "the prev of line 6")


def test_a_deleted_record(sealed, copy):
    lines = lines_of(copy)
    del lines[6]
    write_lines(copy, lines)
    failed(verify(sealed[0], copy), "record 6 is missing or out of order: seq 7 found at "
                                    "line 7 where 6 was expected")


def test_an_inserted_record(sealed, copy):
    lines = lines_of(copy)
    lines.insert(3, lines[2])
    write_lines(copy, lines)
    failed(verify(sealed[0], copy), "record 3 is missing or out of order: seq 2 found at "
                                    "line 4 where 3 was expected")


def test_reordered_records(sealed, copy):
    lines = lines_of(copy)
    lines[5], lines[6] = lines[6], lines[5]
    write_lines(copy, lines)
    failed(verify(sealed[0], copy), "record 5 is missing or out of order: seq 6 found at "
                                    "line 6 where 5 was expected")


def test_a_record_appended_after_the_head(sealed, copy):
    lines = lines_of(copy)
    forged = {"seq": 14, "time": "2026-01-01T00:00:00.000Z", "run_id": copy.name,
              "event": "note", "prev": sha(lines[-1]), "step": "three", "text": "all good"}
    write_lines(copy, [*lines, encode(forged)])
    failed(verify(sealed[0], copy), "record 14 (line 15) was appended after the run "
                                    "stopped: the head file ends the record at record 13 "
                                    "(line 14, run_finished)")


def test_a_deleted_head(sealed, copy):
    (copy / "head").unlink()
    failed(verify(sealed[0], copy), "line 15: the head file is missing: nothing vouches for "
                                    "where the transcript ends")


def test_an_emptied_head(sealed, copy):
    (copy / "head").write_text("")
    failed(verify(sealed[0], copy), "line 1: the head file is empty, though the run "
                                    "recorded a stop")


def test_an_empty_transcript(sealed, copy):
    (copy / "transcript.jsonl").write_bytes(b"")
    failed(verify(sealed[0], copy), "line 1: the transcript is empty")


def test_a_deleted_transcript(sealed, copy):
    (copy / "transcript.jsonl").unlink()
    failed(verify(sealed[0], copy), f"line 1: the transcript {copy / 'transcript.jsonl'} is "
                                    "missing")


def test_an_edited_snapshot(sealed, copy):
    snapshot = copy / "runbook.snapshot"
    snapshot.write_text(snapshot.read_text().replace("echo two", "rm -rf two"))
    failed(verify(sealed[0], copy), "line 1: the runbook snapshot (runbook.snapshot) was "
                                    "changed: its SHA-256 is")


# ---------------------------------------------------------------------- beyond the chain


def test_a_cut_tail_with_the_head_rewritten(sealed, copy):
    """The chain and head file agree again: only a head kept elsewhere or the seal know."""
    ws, _ = sealed
    original = sha(lines_of(copy)[-1])
    rechain(copy, lines_of(copy)[:9])
    assert verify(ws, copy).exit_code == 0  # the chain alone cannot tell
    failed(verify(ws, copy, "--head", original),
           f"line 9: no record has the head you gave ({original[:12]}…): the transcript was "
           "rewritten or cut since that head was kept")
    failed(verify(ws, copy, "--signers", "allowed_signers"),
           "line 10: the head's seal does not verify: the seal vouches for record 13 (")
    assert "but the transcript ends at record 8" in verify(ws, copy, "--signers",
                                                           "allowed_signers").stdout


def test_a_whole_chain_rewritten(sealed, copy, keys):
    ws, _ = sealed
    original = sha(lines_of(copy)[-1])
    lines = lines_of(copy)
    lines[5] = lines[5].replace(b'"title":"Two"', b'"title":"Too"')
    rechain(copy, lines)
    assert verify(ws, copy).exit_code == 0  # the chain alone cannot tell
    failed(verify(ws, copy, "--head", original), "line 14: no record has the head you gave")
    failed(verify(ws, copy, "--signers", "allowed_signers"),
           "line 14: the head's seal does not verify: the seal vouches for record 13")
    # Sealed again, by a key the signers file does not list: refused and named.
    head = sha(lines_of(copy)[-1])
    (copy / "head.sig").write_text(seal_head(copy.name, 13, head, OPERATOR,
                                             keys["mallory"]).to_json())
    result = verify(ws, copy, "--signers", "allowed_signers")
    failed(result, "line 14: the head's seal does not verify: the signature was made with "
                   f"the ssh-rsa key {fingerprint(keys['mallory'])}, which is not listed for "
                   f"{OPERATOR}")


def test_what_the_operators_own_key_can_rewrite(sealed, copy, keys):
    """Documented limit: the operator holds the sealing key; only --head catches this."""
    ws, _ = sealed
    original = sha(lines_of(copy)[-1])
    rechain(copy, lines_of(copy)[:9])
    head = sha(lines_of(copy)[-1])
    (copy / "head.sig").write_text(seal_head(copy.name, 8, head, OPERATOR,
                                             keys[OPERATOR]).to_json())
    assert verify(ws, copy, "--signers", "allowed_signers").exit_code == 0
    failed(verify(ws, copy, "--head", original), "line 9: no record has the head you gave")


def test_records_after_the_signed_head_are_named(sealed, copy):
    """A later stop that nobody sealed (no key on resume), or records added since."""
    ws, _ = sealed
    lines = lines_of(copy)
    extra = {"seq": 14, "time": "2026-01-01T00:00:00.000Z", "run_id": copy.name,
             "event": "note", "prev": sha(lines[-1]), "text": "later"}
    write_lines(copy, [*lines, encode(extra)])
    (copy / "head").write_text(json.dumps({"seq": 14, "hash": sha(encode(extra))}))
    assert verify(ws, copy).exit_code == 0
    failed(verify(ws, copy, "--signers", "allowed_signers"),
           "line 15: records 14–14 come after the signed head (record 13, sealed by tester")


def test_verify_signers_without_a_seal_says_so(sealed, copy):
    (copy / "head.sig").unlink()
    failed(verify(sealed[0], copy, "--signers", "allowed_signers"),
           "line 15: the head is not signed: no stop of this run was sealed")


@pytest.mark.parametrize("head", ["abc", "z" * 64, "0" * 63])
def test_a_malformed_head_option_is_a_usage_error(sealed, head):
    ws, run_dir = sealed
    result = verify(ws, run_dir, "--head", head)
    assert result.exit_code == 2
    assert f"runbook: error: --head {head}: expected the 64 hex digits of a head hash" \
        in result.stderr


def test_an_unreadable_signers_file_is_a_usage_error(sealed):
    ws, run_dir = sealed
    result = verify(ws, run_dir, "--signers", "no_such_file")
    assert result.exit_code == 2
    assert "runbook: error: the signers file no_such_file does not exist" in result.stderr


# ---------------------------------------------------------------------- what a crash leaves


def kill_mid_step(ws: Workspace) -> Path:
    signal_mid_step(ws, "resume_hang", signal.SIGKILL).communicate(timeout=30)
    (run_dir,) = (ws.root / ".runbook" / "runs").iterdir()
    return run_dir


def test_a_killed_run_is_unsealed_and_resume_takes_it_over(ws):
    run_dir = kill_mid_step(ws)
    head = json.loads((run_dir / "head").read_text())
    records = read_transcript(run_dir)
    assert head["seq"] < records[-1]["seq"]  # `hang` started after the last sync
    checked = ws.runbook("verify", str(run_dir))
    failed(checked, f"line {head['seq'] + 2}: ")
    assert "are not sealed: left by a run killed before it synced them" in checked.stdout
    (ws.root / "done.txt").touch()
    resumed = ws.runbook("resume", run_dir.name)
    assert resumed.exit_code == 0, resumed.output
    (record,) = events(read_transcript(run_dir), "run_resumed")
    assert record["unsealed"] == {"first": head["seq"] + 1, "last": records[-1]["seq"]}
    assert ws.runbook("verify", str(run_dir)).exit_code == 0


def test_a_stopped_run_extended_by_hand_is_not_resumed(ws):
    result = ws.run("approve_quorum", "--as", "alice")
    assert result.exit_code == 3
    (run_dir,) = result.run_dirs()
    lines = lines_of(run_dir)
    forged = {"seq": len(lines), "time": "2026-01-01T00:00:00.000Z", "run_id": run_dir.name,
              "event": "gate_approved", "prev": sha(lines[-1]), "gate": "release_gate",
              "approver": "bob", "method": "flag", "reason": "", "host": "h"}
    write_lines(run_dir, [*lines, encode(forged)])
    refused = ws.runbook("resume", run_dir.name)
    assert refused.exit_code == 2
    assert (f"the transcript of {run_dir.name} does not verify (record {len(lines)} (line "
            f"{len(lines) + 1}) was appended after the run stopped") in refused.stderr
    approve = ws.runbook("approve", run_dir.name, "release_gate", "--as", "carol")
    assert approve.exit_code == 2
    assert "no decision is recorded for it" in approve.stderr


def test_an_interrupted_run_is_sealed_too(ws, keys):
    """Every stop is sealed: here Ctrl-C in the middle of a step (no `signers`: the key
    given in RUNBOOK_SIGNING_KEY signs all the same, for `verify --signers` to check)."""
    proc = ws.start("run", ws.add("resume_hang"),
                    env={"RUNBOOK_SIGNING_KEY": str(keys[OPERATOR])})
    pid_file = ws.root / "pid.txt"
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                 what="the hanging step")
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout
    (run_dir,) = (ws.root / ".runbook" / "runs").iterdir()
    last = read_transcript(run_dir)[-1]
    assert (last["event"], last["status"]) == ("run_finished", "interrupted")
    assert f"sealed: record {last['seq']} signed by {OPERATOR}" in stdout
    write_signers(ws.root / "allowed_signers", f"{OPERATOR} {public(keys[OPERATOR])}")
    checked = ws.runbook("verify", str(run_dir), "--signers", "allowed_signers")
    assert checked.exit_code == 0, checked.output
    assert f"sealed by {OPERATOR} (key {fingerprint(keys[OPERATOR])}) at record " \
           f"{last['seq']}" in checked.stdout
