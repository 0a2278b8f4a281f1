"""Signed approvals (LANGUAGE.md §6.3, §13) from the real command line, with real keys.

A runbook with `signers "allowed_signers"` counts a gate decision only when it is signed
with a key that file lists for the approver, for this run, this gate and this version of
the runbook. Each way a decision can arrive is tried with a forgery: `runbook approve --as
carol` without carol's key, `--approve gate=alice` on the run line, a line written by hand
into the decisions file, a name typed at the prompt, a signature replayed from another run
or gate. Each is refused and says why; the valid ones count and survive `verify --signers`.

Keys are made by ssh-keygen (ed25519 and RSA); the agent is a real ssh-agent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import OPERATOR, Workspace, events, finished, read_transcript, run_in_terminal
from keys import fingerprint, make_key, public, write_signers

from runbook_lang.trust import ApprovalStatement, sign_approval, utc_now

SIGNED = Path(__file__).resolve().parent / "fixtures" / "signed"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """alice (ed25519), bob (RSA), carol (ed25519), the operator tester (ed25519), and
    mallory, whom no signers file lists."""
    root = tmp_path_factory.mktemp("keys")
    return {"alice": make_key(root / "alice", "ed25519"), "bob": make_key(root / "bob", "rsa"),
            "carol": make_key(root / "carol", "ed25519"),
            OPERATOR: make_key(root / OPERATOR, "ed25519"),
            "mallory": make_key(root / "mallory", "ed25519")}


# Only the agent a test starts itself (the `agent` fixture, tests/keys.py).
pytestmark = pytest.mark.usefixtures("no_outside_agent")


def team(keys, *extra: str) -> list[str]:
    return [f"{name} {public(keys[name])}" for name in ("alice", "bob", "carol", OPERATOR)] \
        + list(extra)


@pytest.fixture
def sws(ws: Workspace, keys) -> Workspace:
    """A workspace with the signed runbooks and an allowed-signers file for the team."""
    for path in SIGNED.glob("*.runbook"):
        shutil.copy(path, ws.root / path.name)
    write_signers(ws.root / "allowed_signers", *team(keys))
    return ws


def run_dir(ws: Workspace, run_id: str) -> Path:
    return ws.root / ".runbook" / "runs" / run_id


def paused(ws: Workspace, name: str, *args: str) -> str:
    """Run until the run pauses at a gate; its id."""
    result = ws.runbook("run", name, *args)
    assert result.exit_code == 3, result.output
    return sorted((ws.root / ".runbook" / "runs").iterdir())[-1].name


def lines(ws: Workspace) -> list[str]:
    path = ws.root / "runs.txt"
    return path.read_text().split() if path.exists() else []


def refused(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------- what counts


def test_valid_signed_approvals_count_and_survive_verify(sws, keys, agent):
    run_id = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    alice = sws.runbook("approve", run_id, "release_gate", "--as", "alice", "--key",
                        keys["alice"], "--reason", "change 4711 reviewed")
    assert alice.exit_code == 0, alice.output
    assert alice.stdout == (f"recorded: alice approves gate release_gate of run {run_id} "
                            f"(1 of 2), signed with key {fingerprint(keys['alice'])}\n"
                            "1 more approval needed before resuming\n")
    agent.add(keys["bob"])  # bob's RSA key, held by the agent: no --key needed
    bob = sws.runbook("approve", run_id, "release_gate", "--as", "bob")
    assert bob.exit_code == 0, bob.output
    assert f"signed with key {fingerprint(keys['bob'])}" in bob.stdout

    done = sws.runbook("resume", run_id, "--sign-with", keys[OPERATOR])
    assert done.exit_code == 0, done.output
    assert lines(sws) == ["prepare", "release"]
    assert f"✓ approved by alice (approve-command, signed with key " \
           f"{fingerprint(keys['alice'])})" in done.stdout
    records = read_transcript(run_dir(sws, run_id))
    approved = events(records, "gate_approved")
    assert [(r["approver"], r["identity"], r["key"]) for r in approved] == [
        ("alice", "verified", fingerprint(keys["alice"])),
        ("bob", "verified", fingerprint(keys["bob"]))]
    statement = json.loads(approved[0]["statement"])
    assert (statement["run_id"], statement["gate"], statement["approver"],
            statement["reason"], statement["time"]) == (
        run_id, "release_gate", "alice", "change 4711 reviewed", approved[0]["decided_at"])
    assert approved[0]["signature"].startswith("-----BEGIN SSH SIGNATURE-----")

    checked = sws.runbook("verify", run_id, "--signers", "allowed_signers")
    assert checked.exit_code == 0, checked.output
    assert f"sealed by {OPERATOR} (key {fingerprint(keys[OPERATOR])}) at record " \
           f"{records[-1]['seq']}" in checked.stdout
    assert (f"gate release_gate approved by alice: signed by alice (key "
            f"{fingerprint(keys['alice'])})") in checked.stdout
    assert (f"gate release_gate approved by bob: signed by bob (key "
            f"{fingerprint(keys['bob'])})") in checked.stdout
    shown = sws.runbook("show", run_id)
    assert "by alice via approve-command on " in shown.stdout
    assert f", identity verified (key {fingerprint(keys['alice'])})" in shown.stdout
    assert f"Sealed by        {OPERATOR} (key {fingerprint(keys[OPERATOR])})" in shown.stdout


def test_a_signed_rejection_ends_the_run_as_rejected(sws, keys):
    run_id = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    result = sws.runbook("approve", run_id, "release_gate", "--as", "carol", "--key",
                         keys["carol"], "--reject", "--reason", "not in the window")
    assert result.exit_code == 0, result.output
    ended = sws.runbook("resume", run_id)
    assert ended.exit_code == 4, ended.output
    (rejected,) = events(read_transcript(run_dir(sws, run_id)), "gate_rejected")
    assert (rejected["approver"], rejected["identity"], rejected["reason"]) == (
        "carol", "verified", "not in the window")
    assert json.loads(rejected["statement"])["decision"] == "reject"


def test_the_operator_approves_with_their_own_key_on_the_run_line(sws, keys):
    """`--approve GATE` is the operator's vote: signed at the gate with --sign-with."""
    write_signers(sws.root / "allowed_signers", *team(keys))
    result = sws.runbook("run", "two_gates.runbook", "--sign-with", keys[OPERATOR],
                         "--approve", "first_gate", "--approve", f"second_gate={OPERATOR}")
    # tester is not among the approvers (alice, bob): the signed vote is still not counted.
    assert result.exit_code == 3, result.output
    assert "--approve ignored: 'tester' is not an approver of gate first_gate" in result.stdout
    write_signers(sws.root / "allowed_signers", *team(keys), f"alice {public(keys[OPERATOR])}")
    as_alice = sws.runbook("run", "two_gates.runbook", "--as", "alice", "--sign-with",
                           keys[OPERATOR], "--approve", "first_gate", "--approve",
                           "second_gate")
    assert as_alice.exit_code == 0, as_alice.output
    assert "✓ approved by alice (flag, signed with key" in as_alice.stdout


def test_an_agent_key_listed_for_the_operator_seals_without_being_named(sws, keys, agent):
    agent.add(keys["mallory"])  # the agent's first key is not the operator's
    agent.add(keys[OPERATOR])
    result = sws.runbook("run", "steps.runbook")
    assert result.exit_code == 0, result.output
    assert f"sealed: record 13 signed by {OPERATOR} (key {fingerprint(keys[OPERATOR])})" \
        in result.stdout
    started = read_transcript(sorted((sws.root / ".runbook" / "runs").iterdir())[-1])[0]
    assert started["operator_key"] == {"fingerprint": fingerprint(keys[OPERATOR]),
                                       "principals": [OPERATOR]}
    assert started["signers"]["path"] == str(sws.root / "allowed_signers")


def test_runbook_signing_key_names_the_operators_key(sws, keys):
    result = sws.runbook("run", "steps.runbook",
                         env={"RUNBOOK_SIGNING_KEY": str(keys[OPERATOR])})
    assert result.exit_code == 0, result.output
    assert f"signed by {OPERATOR} (key {fingerprint(keys[OPERATOR])})" in result.stdout


# ---------------------------------------------------------------------- forgeries


def test_approve_as_carol_without_carols_key_is_refused(sws, keys, agent):
    """From the operator's own shell: the agent holds the operator's key, not carol's."""
    run_id = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    agent.add(keys[OPERATOR])
    refused(sws.runbook("approve", run_id, "release_gate", "--as", "carol"),
            "runbook: error: cannot sign carol's decision: ssh-agent holds no key listed for "
            f"carol in {sws.root / 'allowed_signers'}: give --key KEY_FILE")
    refused(sws.runbook("approve", run_id, "release_gate", "--as", "carol", "--key",
                        keys[OPERATOR]),
            f"runbook: error: not recorded: the signature was made with {OPERATOR}'s "
            f"ssh-ed25519 key {fingerprint(keys[OPERATOR])}, which is not listed for carol")
    refused(sws.runbook("approve", run_id, "release_gate", "--as", "carol", "--key",
                        keys["mallory"]),
            f"not recorded: the signature was made with the ssh-ed25519 key "
            f"{fingerprint(keys['mallory'])}, which is not listed for carol")
    assert not (run_dir(sws, run_id) / "approvals.jsonl").exists()


def test_the_operators_key_under_another_name_is_the_operators_vote(sws, keys):
    """self_approval false: a name the operator's key also signs for is the operator."""
    write_signers(sws.root / "allowed_signers", *team(keys), f"carol {public(keys[OPERATOR])}")
    run_id = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    refused(sws.runbook("approve", run_id, "release_gate", "--as", "carol", "--key",
                        keys[OPERATOR]),
            f"not recorded: carol's vote is signed with the key of the operator who started "
            f"the run ({OPERATOR}, key {fingerprint(keys[OPERATOR])}); under self_approval "
            "false the operator does not approve their own run, under any name")


def test_approve_for_someone_else_on_the_run_line_is_refused(sws, keys):
    result = sws.runbook("run", "quorum.runbook", "--sign-with", keys[OPERATOR],
                         "--approve", "release_gate=alice", "--approve", "release_gate=bob")
    refused(result, "runbook: error: --approve release_gate=alice: this runbook counts only "
            "signed approvals (signers \"" + str(sws.root / "allowed_signers") + "\"), and a "
            "new run's id is not known before it starts, so nobody can have signed for it; "
            "let the run pause at the gate, then alice approves it: runbook approve RUN_ID "
            "release_gate --as alice --key KEY, and runbook resume RUN_ID")
    assert not (sws.root / ".runbook").exists()
    assert lines(sws) == []
    run_id = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    again = sws.runbook("resume", run_id, "--approve", "release_gate=alice")
    refused(again, "--approve release_gate=alice: this runbook counts only signed approvals")
    assert f"alice approves it with: runbook approve {run_id} release_gate --as alice " \
           "--key KEY" in again.stderr
    assert lines(sws) == ["prepare"]


def test_without_a_key_the_operators_identity_is_refused_before_anything_runs(sws, keys):
    result = sws.runbook("run", "quorum.runbook")
    refused(result, "gate release_gate has self_approval false and this runbook verifies "
            "identities")
    assert "give --sign-with KEY (a key listed for tester)" in result.stderr
    not_listed = sws.runbook("run", "quorum.runbook", "--sign-with", keys["mallory"])
    refused(not_listed, f"--sign-with {keys['mallory']} cannot sign for the operator "
            f"{OPERATOR}: the signature was made with the ssh-ed25519 key "
            f"{fingerprint(keys['mallory'])}, which is not listed for {OPERATOR}")
    assert not (sws.root / ".runbook").exists()


def hand_written(ws: Workspace, run_id: str, **decision) -> None:
    with open(run_dir(ws, run_id) / "approvals.jsonl", "a") as out:
        out.write(json.dumps({"reject": False, "reason": "", "time": "2026-01-01T00:00:00Z",
                              "host": "laptop", "method": "approve-command", **decision})
                  + "\n")


def test_a_hand_written_decision_does_not_count(sws, keys):
    run_id = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    hand_written(sws, run_id, gate="release_gate", approver="carol")
    hand_written(sws, run_id, gate="release_gate", approver="bob", signature="garbage",
                 statement="{}")
    hand_written(sws, run_id, gate="release_gate", approver="alice", reject=True)
    result = sws.runbook("resume", run_id)
    assert result.exit_code == 3, result.output
    assert ("not counted: carol's decision (runbook approve): the approval by carol is not "
            "signed") in result.stdout
    assert "not counted: bob's decision (runbook approve): the signed statement cannot be " \
           "read" in result.stdout
    assert "alice's decision (runbook approve): the approval by alice is not signed" \
        in result.stdout
    records = read_transcript(run_dir(sws, run_id))
    assert not events(records, "gate_approved") and not events(records, "gate_rejected")
    assert [(r["approver"], r["decision"], r["refusal"]) for r in
            events(records, "gate_refused")] == [
        ("carol", "approve", "the approval by carol is not signed"),
        ("bob", "approve", "the signed statement cannot be read: the statement is not a "
                           "runbook-approval statement (format None)"),
        ("alice", "reject", "the approval by alice is not signed")]
    # The forged line neither counts nor blocks the real carol.
    real = sws.runbook("approve", run_id, "release_gate", "--as", "carol", "--key",
                       keys["carol"])
    assert real.exit_code == 0, real.output
    # A refusal is recorded once, not at every resume.
    assert sws.runbook("resume", run_id).exit_code == 3
    assert len(events(read_transcript(run_dir(sws, run_id)), "gate_refused")) == 3


def test_a_signature_replayed_from_another_run_is_refused(sws, keys):
    first = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    assert sws.runbook("approve", first, "release_gate", "--as", "alice", "--key",
                       keys["alice"]).exit_code == 0
    second = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    stolen = (run_dir(sws, first) / "approvals.jsonl").read_text()
    (run_dir(sws, second) / "approvals.jsonl").write_text(stolen)
    result = sws.runbook("resume", second)
    assert result.exit_code == 3, result.output
    assert (f"not counted: alice's decision (runbook approve): the signature is for run "
            f"{first}, not {second}: a signature replayed from another run") in result.stdout
    assert not events(read_transcript(run_dir(sws, second)), "gate_approved")


def test_a_signature_replayed_from_another_gate_is_refused(sws, keys):
    run_id = paused(sws, "two_gates.runbook")
    assert sws.runbook("approve", run_id, "first_gate", "--as", "alice", "--key",
                       keys["alice"]).exit_code == 0
    assert sws.runbook("resume", run_id).exit_code == 3  # now at second_gate
    decisions = run_dir(sws, run_id) / "approvals.jsonl"
    replayed = json.loads(decisions.read_text().splitlines()[0])
    replayed.update(gate="second_gate", id="replayed")
    with open(decisions, "a") as out:
        out.write(json.dumps(replayed) + "\n")
    result = sws.runbook("resume", run_id)
    assert result.exit_code == 3, result.output
    assert ("the signature is for gate first_gate, not second_gate: a signature replayed "
            "from another gate") in result.stdout
    assert lines(sws) == ["middle"]


def test_a_signature_for_another_version_of_the_runbook_is_refused(sws, keys):
    """Signed for this run and gate, but over another runbook's SHA-256."""
    run_id = paused(sws, "two_gates.runbook")
    statement = ApprovalStatement(run_id, "ab" * 32, "first_gate", "approve", "", utc_now(),
                                  "alice")
    signed = sign_approval(statement, keys["alice"])
    hand_written(sws, run_id, gate="first_gate", approver="alice", statement=signed.statement,
                 signature=signed.signature)
    result = sws.runbook("resume", run_id)
    assert result.exit_code == 3, result.output
    assert ("not counted: alice's decision (runbook approve): the signature is for another "
            "version of the runbook (SHA-256 abababababab…") in result.stdout


def test_typing_a_name_at_the_prompt_needs_that_persons_key(sws, keys, agent):
    agent.add(keys[OPERATOR])
    code, output = run_in_terminal(
        sws, "run", "two_gates.runbook", "--sign-with", str(keys[OPERATOR]),
        answers=("alice\na\nlooks fine\n\n"  # Enter: the agent, which has no key for alice
                 f"bob\na\nfine\n{keys['mallory']}\n"  # mallory's key, typed as bob's
                 f"alice\na\nchecked\n{keys['alice']}\n"  # alice's own key: counts
                 "\x04"))
    assert code == 3, output
    assert "key to sign as alice (a key file; Enter: ssh-agent):" in output
    assert f"not counted: ssh-agent holds no key listed for alice in " \
           f"{sws.root / 'allowed_signers'}" in output
    assert f"not counted: the signature was made with the ssh-ed25519 key " \
           f"{fingerprint(keys['mallory'])}, which is not listed for bob" in output
    assert "✓ approved by alice (terminal, signed with key" in output
    records = read_transcript(sorted((sws.root / ".runbook" / "runs").iterdir())[-1])
    assert [(r["approver"], r["method"]) for r in events(records, "gate_refused")] == [
        ("alice", "terminal"), ("bob", "terminal")]
    (approved,) = events(records, "gate_approved")
    assert (approved["approver"], approved["identity"], approved["reason"]) == (
        "alice", "verified", "checked")
    waiting = events(records, "gate_waiting")
    assert [(r["gate"], r["method"]) for r in waiting] == [
        ("first_gate", "terminal"), ("second_gate", "terminal"), ("second_gate", None)]
    assert finished(records)["status"] == "paused"


# ---------------------------------------------------------------------- without signers


def test_without_signers_names_are_asserted_as_before(ws):
    result = ws.run("approve_quorum", "--as", "alice")
    assert result.exit_code == 3, result.output
    run_id = result.run_dirs()[0].name
    for who in ("bob", "carol"):
        assert ws.runbook("approve", run_id, "release_gate", "--as", who).exit_code == 0
    assert ws.runbook("resume", run_id).exit_code == 0
    approved = events(read_transcript(result.run_dirs()[0]), "gate_approved")
    assert [(r["approver"], r["identity"]) for r in approved] == [
        ("bob", "asserted"), ("carol", "asserted")]
    assert all(r["decided_at"] < r["time"] for r in approved)
    shown = ws.runbook("show", run_id).stdout
    assert "approved by bob via approve-command on" in shown
    assert shown.count(", identity asserted") == 2
    assert "Sealed by        nobody (the head is not signed)" in shown


def test_a_dry_run_says_what_a_real_run_would_refuse(sws, keys):
    result = sws.runbook("run", "quorum.runbook", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Note: a real run would refuse: gate release_gate has self_approval false and " \
           "this runbook verifies identities" in result.stdout
    signed = sws.runbook("run", "quorum.runbook", "--dry-run", "--sign-with", keys[OPERATOR])
    assert "a real run would refuse" not in signed.stdout
    flagged = sws.runbook("run", "quorum.runbook", "--dry-run", "--sign-with", keys[OPERATOR],
                          "--approve", "release_gate=alice")
    assert "Note: a real run would refuse: --approve release_gate=alice: this runbook " \
           "counts only signed approvals" in flagged.stdout
    assert not (sws.root / ".runbook").exists()


def test_without_ssh_keygen_a_signed_vote_is_not_counted_and_says_why(sws, keys, tmp_path):
    run_id = paused(sws, "quorum.runbook", "--sign-with", keys[OPERATOR])
    for who in ("alice", "bob"):
        assert sws.runbook("approve", run_id, "release_gate", "--as", who, "--key",
                           keys[who]).exit_code == 0
    result = sws.runbook("resume", run_id, env={"PATH": str(tmp_path)})
    assert result.exit_code == 3, result.output
    assert "not counted: alice's decision (runbook approve): the signature cannot be checked: " \
           "ssh-keygen was not found on PATH" in result.stdout
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert lines(sws) == ["prepare"]
    # Not a verdict on the votes: with ssh-keygen back, they count.
    again = sws.runbook("resume", run_id)
    assert again.exit_code == 0, again.output
    assert lines(sws) == ["prepare", "release"]


def test_without_the_operators_key_the_run_says_its_head_is_not_sealed(sws, keys):
    result = sws.runbook("run", "steps.runbook")
    assert result.exit_code == 0, result.output
    assert "the head is not sealed: no key of the operator's" in result.stdout
    (run,) = (sws.root / ".runbook" / "runs").iterdir()
    run_id = run.name
    checked = sws.runbook("verify", "--signers", "allowed_signers", run_id)
    assert checked.exit_code == 1 and "the head is not signed" in checked.stdout
