"""SSH signatures for approvals and heads (LANGUAGE.md §13), with real keys and real tools.

Keys are made by `ssh-keygen` (ed25519 and RSA), listed in a real allowed-signers file;
an `ssh-agent` is started by the tests that need one and killed after. Every verdict is
ssh-keygen's own; these tests check that each way an approval or a seal can be wrong is
refused, and says why in words a person can act on.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import alive, read_transcript, run_dirs, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keys import fingerprint, make_key, pub_of, public, write_signers

from runbook_lang.trust import (
    ApprovalStatement,
    Signed,
    SignersError,
    SigningKeyError,
    SshKeygenMissing,
    ToolFailed,
    check_approval,
    check_seal,
    find_principals,
    is_self_approval,
    seal_head,
    sign,
    sign_approval,
    utc_now,
    verify,
)
from runbook_lang.trust.signers import read_signers
from runbook_lang.trust.statements import format_time
from runbook_lang.trust.tool import private_dir, run_tool

APPROVAL = "runbook-approval"
HEAD = "runbook-head"
SHA = "ab" * 32
OTHER_SHA = "cd" * 32
RUN = "20261129T161342Z-3f9a1c"


# --- keys, signers, agent ------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """alice (ed25519), bob (RSA), mallory (listed nowhere), carol (passphrase 'sesame')."""
    root = tmp_path_factory.mktemp("keys")
    return {"alice": make_key(root / "alice", "ed25519"),
            "bob": make_key(root / "bob", "rsa"),
            "mallory": make_key(root / "mallory", "ed25519"),
            "carol": make_key(root / "carol", "ed25519", passphrase="sesame")}


@pytest.fixture
def signers(tmp_path, keys) -> Path:
    """alice and bob, as a team would list them."""
    return write_signers(tmp_path / "allowed_signers",
                         "# who may approve and seal",
                         f"alice {public(keys['alice'])}",
                         f"bob {public(keys['bob'])} bob@laptop",
                         f"carol {public(keys['carol'])}")


# Only the agent a test starts itself (the `agent` fixture, tests/keys.py).
pytestmark = pytest.mark.usefixtures("no_outside_agent")


def public_only(tmp_path: Path, key: Path) -> Path:
    """The key's .pub copied alone into a directory: no private half on disk beside it."""
    (tmp_path / "pub").mkdir(exist_ok=True)
    target = tmp_path / "pub" / pub_of(key).name
    shutil.copy(pub_of(key), target)
    return target


# --- sign and verify -----------------------------------------------------------------------

@pytest.mark.parametrize("who", ["alice", "bob"])
def test_a_key_file_signs_and_the_listed_principal_verifies(keys, signers, who):
    signature = sign(b"deploy 1.4.2", APPROVAL, keys[who])
    verdict = verify(b"deploy 1.4.2", signature, who, APPROVAL, signers)
    assert verdict.ok, verdict.reason
    assert (verdict.principal, verdict.fingerprint) == (who, fingerprint(keys[who]))
    assert verdict.key_type == ("ssh-ed25519" if who == "alice" else "ssh-rsa")
    assert verdict.problem is None and verdict.reason == ""


def test_a_signature_verifies_with_plain_ssh_keygen(tmp_path, keys, signers):
    """What an auditor can do by hand, without runbook."""
    (tmp_path / "sig").write_text(sign(b"statement", APPROVAL, keys["alice"]))
    done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "alice",
                           "-n", APPROVAL, "-s", str(tmp_path / "sig")], input=b"statement",
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    assert b'Good "runbook-approval" signature for alice' in done.stdout


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_the_agent_signs_when_only_the_public_key_is_on_disk(tmp_path, keys, signers, agent,
                                                             who):
    agent.add(keys[who])
    pub = public_only(tmp_path, keys[who])
    for key in (pub, str(pub), public(keys[who]), "key::" + public(keys[who])):
        verdict = verify(b"data", sign(b"data", APPROVAL, key), who, APPROVAL, signers)
        assert verdict.ok, (key, verdict.reason)


def test_no_key_means_the_agents_first_key(keys, signers, agent):
    agent.add(keys["bob"])
    agent.add(keys["alice"])
    signature = sign(b"data", HEAD, None)
    assert verify(b"data", signature, "bob", HEAD, signers).ok
    assert find_principals(b"data", signature, HEAD, signers) == ["bob"]


def test_a_passphrase_key_signs_through_the_agent_holding_it(keys, signers, agent):
    agent.add(keys["carol"], passphrase="sesame")
    assert verify(b"data", sign(b"data", APPROVAL, keys["carol"]), "carol", APPROVAL,
                  signers).ok


def test_a_passphrase_key_without_an_agent_fails_at_once_without_a_prompt(keys):
    with pytest.raises(SigningKeyError) as error:
        sign(b"data", APPROVAL, keys["carol"], timeout=20)
    assert str(error.value) == (
        f"{keys['carol']} is protected by a passphrase and no ssh-agent holds it: add it to "
        f"your agent (ssh-add {keys['carol']}) and try again; runbook never asks for "
        "passphrases")


def test_no_askpass_program_is_ever_started(tmp_path, keys, monkeypatch):
    """Not even where a desktop session would pop up a passphrase dialog."""
    marker = tmp_path / "asked"
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\ntouch {marker}\necho sesame\n")
    askpass.chmod(0o700)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("SSH_ASKPASS", str(askpass))
    monkeypatch.setenv("SSH_ASKPASS_REQUIRE", "prefer")
    with pytest.raises(SigningKeyError, match="is protected by a passphrase"):
        sign(b"data", APPROVAL, keys["carol"])
    assert not marker.exists()


def test_a_public_key_without_an_agent_is_refused(tmp_path, keys):
    pub = public_only(tmp_path, keys["alice"])
    with pytest.raises(SigningKeyError, match=r"private half must be in ssh-agent, but no "
                       r"ssh-agent: SSH_AUTH_SOCK is not set \(start one with"):
        sign(b"data", APPROVAL, pub)


def test_a_public_key_the_agent_does_not_hold_is_refused(tmp_path, keys, agent):
    agent.add(keys["bob"])
    with pytest.raises(SigningKeyError, match=r"ssh-agent does not hold its private half "
                       r"\(add it with ssh-add PRIVATE_KEY_FILE\)"):
        sign(b"data", APPROVAL, public(keys["alice"]))


def test_a_literal_key_too_long_to_be_a_file_name_is_read_as_a_key(agent):
    """A 4096-bit key's text can hold more than 255 characters without a '/'."""
    def field(raw: bytes) -> bytes:
        return len(raw).to_bytes(4, "big") + raw

    blob = field(b"ssh-rsa") + field(b"\x01\x00\x01") + field(b"\x00" + b"QQQ" * 150)
    literal = "ssh-rsa " + base64.b64encode(blob).decode()
    assert len(literal.split("/")[0]) > 255
    with pytest.raises(SigningKeyError, match="ssh-agent does not hold its private half"):
        sign(b"data", APPROVAL, literal)


def test_no_key_and_an_empty_agent_is_refused(agent):
    with pytest.raises(SigningKeyError, match="no key was given and ssh-agent holds no keys"):
        sign(b"data", APPROVAL)


def test_a_dead_agent_is_named(keys, agent):
    agent.proc.terminate()
    agent.proc.wait(timeout=10)
    with pytest.raises(SigningKeyError, match="cannot reach ssh-agent at SSH_AUTH_SOCK="):
        sign(b"data", APPROVAL)


@pytest.mark.parametrize("case, message", [
    ("missing", "no such key file"),
    ("directory", "not a key file"),
    ("not a key", "is not an SSH key (neither a private key nor a public key line"),
    ("broken private key", "is not an SSH private key ssh-keygen can read"),
    ("too open", "its permissions are too open (chmod 600"),
])
def test_an_unusable_key_file_says_why(tmp_path, keys, case, message):
    key = tmp_path / "key"
    if case == "directory":
        key.mkdir()
    elif case == "not a key":
        key.write_text("hello\n")
        key.chmod(0o600)
    elif case == "broken private key":
        key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                       "-----END OPENSSH PRIVATE KEY-----\n")
        key.chmod(0o600)
    elif case == "too open":
        shutil.copy(keys["alice"], key)
        key.chmod(0o644)
    with pytest.raises(SigningKeyError) as error:
        sign(b"data", APPROVAL, key)
    assert message in str(error.value)


def test_unsigned_and_malformed_signatures_are_refused(keys, signers):
    good = sign(b"data", APPROVAL, keys["alice"])
    body = good.splitlines()
    blob = base64.b64decode("".join(body[1:-1]))
    short = "\n".join([body[0], base64.b64encode(blob[:-20]).decode(), body[-1]])
    flipped = "\n".join([body[0], body[1][:-1] + ("A" if body[1][-1] != "A" else "B"),
                         *body[2:]])
    cases = {None: "there is no signature", "": "there is no signature",
             "  \n": "there is no signature",
             "garbage": "does not start with -----BEGIN SSH SIGNATURE-----",
             "\n".join(body[:-1]): "does not end with -----END SSH SIGNATURE-----",
             "\n".join([body[0], "!!!!", body[-1]]): "body is not base64",
             short: "cut short",
             "x" * 70000: "too long"}
    for signature, reason in cases.items():
        verdict = verify(b"data", signature, "alice", APPROVAL, signers)
        assert not verdict.ok and reason in verdict.reason, (signature, verdict)
        assert verdict.problem in ("unsigned", "malformed")
    verdict = verify(b"data", flipped, "alice", APPROVAL, signers)
    assert not verdict.ok and verdict.problem in ("malformed", "mismatch"), verdict


def test_a_signature_for_another_namespace_is_refused(keys, signers):
    for namespace in (HEAD, "git"):
        verdict = verify(b"data", sign(b"data", namespace, keys["alice"]), "alice", APPROVAL,
                         signers)
        assert (verdict.ok, verdict.problem) == (False, "wrong-namespace")
        assert verdict.reason == (f"the signature is for namespace {namespace!r}, not "
                                  "'runbook-approval'")


def test_changed_data_does_not_verify(keys, signers):
    verdict = verify(b"data!", sign(b"data", APPROVAL, keys["bob"]), "bob", APPROVAL, signers)
    assert (verdict.ok, verdict.problem) == (False, "mismatch")
    assert verdict.reason.startswith("the signature does not match the statement")


def test_a_key_not_listed_for_the_principal_is_refused_and_named(keys, signers):
    by_alice = sign(b"data", APPROVAL, keys["alice"])
    verdict = verify(b"data", by_alice, "bob", APPROVAL, signers)
    assert (verdict.ok, verdict.problem) == (False, "not-listed")
    assert verdict.reason == (f"the signature was made with alice's ssh-ed25519 key "
                              f"{fingerprint(keys['alice'])}, which is not listed for bob in "
                              f"{signers}")
    verdict = verify(b"data", sign(b"data", APPROVAL, keys["mallory"]), "alice", APPROVAL,
                     signers)
    assert verdict.problem == "not-listed"
    assert verdict.reason.startswith(f"the signature was made with the ssh-ed25519 key "
                                     f"{fingerprint(keys['mallory'])}, which is not listed")


def test_key_validity_is_judged_at_the_given_time(tmp_path, keys):
    signature = sign(b"data", APPROVAL, keys["alice"])
    expired = write_signers(tmp_path / "expired",
                            f'alice valid-before="20200101" {public(keys["alice"])}')
    verdict = verify(b"data", signature, "alice", APPROVAL, expired)
    assert (verdict.ok, verdict.problem) == (False, "expired")
    assert "has expired: valid-before 2020-01-01T00:00:00, checked at" in verdict.reason
    assert f"({expired}:1)" in verdict.reason
    assert verify(b"data", signature, "alice", APPROVAL, expired,
                  at=datetime(2019, 6, 1, tzinfo=UTC)).ok
    future = write_signers(tmp_path / "future",
                           f'alice valid-after="20990101" {public(keys["alice"])}')
    verdict = verify(b"data", signature, "alice", APPROVAL, future)
    assert (verdict.ok, verdict.problem) == (False, "not-yet-valid")
    assert "is not yet valid: valid-after 2099-01-01T00:00:00" in verdict.reason


def test_a_key_limited_to_other_namespaces_is_refused(tmp_path, keys):
    limited = write_signers(tmp_path / "limited",
                            f'alice namespaces="git,runbook-head" {public(keys["alice"])}')
    approval = sign(b"data", APPROVAL, keys["alice"])
    verdict = verify(b"data", approval, "alice", APPROVAL, limited)
    assert verdict.problem == "namespace-not-allowed"
    assert "may not sign in namespace 'runbook-approval'" in verdict.reason
    assert verify(b"data", sign(b"data", HEAD, keys["alice"]), "alice", HEAD, limited).ok


def test_a_signers_line_that_ssh_keygen_skips_is_named_in_the_reason(tmp_path, keys):
    """An unquoted date makes ssh-keygen ignore the line: the reason says so."""
    typo = write_signers(tmp_path / "typo", f"alice valid-before=20990101 {public(keys['alice'])}")
    verdict = verify(b"data", sign(b"data", APPROVAL, keys["alice"]), "alice", APPROVAL, typo)
    assert verdict.problem == "not-listed"
    assert f"(ssh-keygen skipped {typo}:1: bad options: missing start quote)" in verdict.reason


def test_find_principals_names_every_name_the_key_verifies_for(tmp_path, keys, signers):
    data = b"head 41"
    signature = sign(data, HEAD, keys["alice"])
    assert find_principals(data, signature, HEAD, signers) == ["alice"]
    shared = write_signers(tmp_path / "shared", f"alice,ops {public(keys['alice'])}",
                           f"bob {public(keys['bob'])}")
    assert find_principals(data, signature, HEAD, shared) == ["alice", "ops"]
    assert find_principals(b"head 42", signature, HEAD, signers) == []
    assert find_principals(data, signature, APPROVAL, signers) == []
    assert find_principals(data, None, HEAD, signers) == []
    assert find_principals(data, sign(data, HEAD, keys["mallory"]), HEAD, signers) == []


def test_a_missing_or_unusable_signers_file_is_an_error(tmp_path, keys):
    signature = sign(b"data", APPROVAL, keys["alice"])
    (tmp_path / "dir").mkdir()
    for path, message in ((tmp_path / "nope", "does not exist"),
                          (tmp_path / "dir", "is not a file")):
        with pytest.raises(SignersError, match=f"the signers file {path} {message}"):
            verify(b"data", signature, "alice", APPROVAL, path)


def test_without_ssh_keygen_the_error_says_how_to_install_it(tmp_path, keys, signers,
                                                            monkeypatch):
    signature = sign(b"data", APPROVAL, keys["alice"])
    monkeypatch.setenv("PATH", str(tmp_path))
    for call in (lambda: sign(b"data", APPROVAL, keys["alice"]),
                 lambda: verify(b"data", signature, "alice", APPROVAL, signers)):
        with pytest.raises(SshKeygenMissing) as error:
            call()
        assert "ssh-keygen was not found on PATH" in str(error.value)
        assert "apt-get install openssh-client" in str(error.value)
        assert "macOS ships them" in str(error.value)


def test_scratch_files_live_in_a_private_directory_that_is_removed(tmp_path, keys, signers,
                                                                  monkeypatch):
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    with private_dir() as scratch:
        assert scratch.parent == scratch_root
        assert scratch.stat().st_mode & 0o777 == 0o700
    assert not scratch.exists()
    verify(b"data", sign(b"data", APPROVAL, keys["alice"]), "alice", APPROVAL, signers)
    verify(b"other", sign(b"data", APPROVAL, keys["alice"]), "bob", APPROVAL, signers)
    with pytest.raises(SigningKeyError):
        sign(b"data", APPROVAL, keys["carol"])
    assert list(scratch_root.iterdir()) == []


def test_a_tool_that_does_not_finish_is_stopped_with_its_group(tmp_path):
    script = tmp_path / "stuck.sh"
    # The child holds no pipe of ours: only stopping the whole group ends it.
    script.write_text(f"#!/bin/sh\nsleep 300 >/dev/null 2>&1 &\necho $! > {tmp_path}/child\n"
                      "wait\n")
    script.chmod(0o700)
    with pytest.raises(ToolFailed, match="stuck.sh did not finish within 1 s"):
        run_tool([str(script)], timeout=1, what="testing")
    child = int((tmp_path / "child").read_text())
    wait_for(lambda: not alive(child), what="the tool's child to be gone")


def test_names_and_data_never_pass_through_a_shell(tmp_path, keys):
    """A principal full of shell syntax is just a name that is not listed."""
    marker = tmp_path / "marker"
    hostile = f"alice; touch {marker}; $(touch {marker})"
    listed = write_signers(tmp_path / "signers", f'"{hostile}" {public(keys["alice"])}')
    signature = sign(hostile.encode(), APPROVAL, keys["alice"])
    verdict = verify(hostile.encode(), signature, hostile, APPROVAL, listed)
    assert verdict.ok, verdict.reason
    assert verify(hostile.encode(), signature, "alice", APPROVAL, listed).problem == "not-listed"
    assert not marker.exists()


# --- approvals -----------------------------------------------------------------------------

def statement(**fields) -> ApprovalStatement:
    base = dict(run_id=RUN, runbook_sha256=SHA, gate="release_gate", decision="approve",
                reason="change 4711 reviewed", time=utc_now(), approver="alice")
    return ApprovalStatement(**{**base, **fields})


def record(signed: Signed, st: ApprovalStatement, **changes) -> dict:
    """An approvals.jsonl-style record of a signed decision."""
    base = {"gate": st.gate, "approver": st.approver, "reject": st.decision == "reject",
            "reason": st.reason, "time": st.time, "host": "laptop",
            "method": "approve-command", "statement": signed.statement,
            "signature": signed.signature}
    return {**base, **changes}


def check(rec: dict, signers: Path, **context):
    """check_approval for the run RUN, started an hour ago, waiting at release_gate."""
    started = format_time(datetime.now(UTC) - timedelta(hours=1))
    expect = dict(run_id=RUN, runbook_sha256=SHA, gate="release_gate", signers=signers,
                  not_before=started)
    return check_approval(rec, **{**expect, **context})


def test_a_signed_approval_is_verified(keys, signers):
    st = statement()
    result = check(record(sign_approval(st, keys["alice"]), st), signers)
    assert result.verified, result.reason
    assert (result.approver, result.fingerprint, result.statement) == (
        "alice", fingerprint(keys["alice"]), st)
    assert result.describe() == f"signed by alice (key {fingerprint(keys['alice'])})"


def test_an_rsa_approval_signed_through_the_agent_is_verified(tmp_path, keys, signers, agent):
    agent.add(keys["bob"])
    st = statement(approver="bob", decision="reject", reason="not in the window")
    result = check(record(sign_approval(st, public_only(tmp_path, keys["bob"])), st), signers)
    assert result.verified, result.reason


def test_an_approval_of_a_real_paused_run(ws, keys, signers):
    """The statement is built from what the transcript holds: run id, SHA-256, gate."""
    result = ws.run("approve_quorum")
    assert result.exit_code == 3, result.output
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    records = read_transcript(run_dir)
    started = records[0]
    waiting = next(r for r in records if r["event"] == "gate_waiting")
    st = ApprovalStatement(started["run_id"], started["sha256"], waiting["gate"], "approve",
                           "", utc_now(), "bob")
    rec = record(sign_approval(st, keys["bob"]), st)
    verdict = check_approval(rec, run_id=run_dir.name, runbook_sha256=started["sha256"],
                             gate=waiting["gate"], signers=signers, not_before=started["time"])
    assert verdict.verified, verdict.reason


def test_every_refusal_says_why(keys, signers):
    st = statement()
    signed = sign_approval(st, keys["alice"])
    by_mallory = sign_approval(st, keys["mallory"])
    as_bob = statement(approver="bob")
    alice_as_bob = sign_approval(as_bob, keys["alice"])
    edited = Signed(signed.statement.replace("change 4711", "change 4712"), signed.signature)
    cases = [
        (record(signed, st, signature=None), "unsigned", "the approval by alice is not signed"),
        (record(signed, st, signature=""), "unsigned", "the approval by alice is not signed"),
        (record(signed, st, statement=None), "bad-statement", "the record carries no statement"),
        (record(signed, st, statement="{}"), "bad-statement", "not a runbook-approval"),
        (record(signed, st, signature="junk"), "bad-signature", "signature is malformed"),
        (record(edited, st, reason="change 4712 reviewed"), "bad-signature",
         "the signature does not match the statement"),
        (record(Signed(signed.statement, sign(st.to_bytes(), HEAD, keys["alice"])), st),
         "bad-signature", "for namespace 'runbook-head'"),
        (record(by_mallory, st), "not-listed", "which is not listed for alice"),
        (record(alice_as_bob, as_bob), "not-listed",
         f"made with alice's ssh-ed25519 key {fingerprint(keys['alice'])}, which is not "
         "listed for bob"),
        (record(signed, st, approver="bob"), "approver-mismatch",
         "the record names bob, but alice signed the statement"),
        (record(signed, st, reject=True), "decision-mismatch",
         "the record says reject, but the signed statement says approve"),
        (record(signed, st, decision="reject"), "decision-mismatch",
         "the record's decision and reject fields contradict each other"),
        (record(signed, st, reason="change 4712 reviewed"), "reason-mismatch",
         "the recorded reason 'change 4712 reviewed' is not the signed one "
         "'change 4711 reviewed'"),
    ]
    for rec, problem, reason in cases:
        result = check(rec, signers)
        assert (result.verified, result.problem) == (False, problem), (rec, result)
        assert reason in result.reason, (reason, result.reason)
        assert result.describe() == f"not counted: {result.reason}"


def test_a_signature_replayed_from_another_run_gate_or_runbook_is_refused(keys, signers):
    st = statement()
    rec = record(sign_approval(st, keys["alice"]), st)
    result = check(rec, signers, run_id="20261130T090000Z-000001")
    assert (result.problem, result.reason) == ("other-run", (
        f"the signature is for run {RUN}, not 20261130T090000Z-000001: a signature replayed "
        "from another run"))
    result = check(rec, signers, gate="approve_prod")
    assert (result.problem, result.reason) == ("other-gate", (
        "the signature is for gate release_gate, not approve_prod: a signature replayed "
        "from another gate"))
    result = check(rec, signers, runbook_sha256=OTHER_SHA)
    assert (result.problem, result.reason) == ("other-runbook", (
        "the signature is for another version of the runbook (SHA-256 abababababab…, this "
        "run's is cdcdcdcdcdcd…)"))


def test_the_signed_time_must_fall_within_the_run(keys, signers):
    now = datetime.now(UTC)
    early = statement(time=format_time(now - timedelta(days=2)))
    result = check(record(sign_approval(early, keys["alice"]), early), signers,
                   not_before=format_time(now - timedelta(hours=1)))
    assert (result.problem, result.reason) == (
        "out-of-time", f"the statement is dated {early.time}, before the run started")
    late = statement(time=format_time(now + timedelta(hours=1)))
    result = check(record(sign_approval(late, keys["alice"]), late), signers)
    assert (result.problem, result.reason) == (
        "out-of-time", f"the statement is dated {late.time}, in the future")
    skewed = statement(time=format_time(now + timedelta(minutes=2)))
    assert check(record(sign_approval(skewed, keys["alice"]), skewed), signers).verified


def test_the_key_is_judged_at_the_signed_time(tmp_path, keys):
    now = datetime.now(UTC)
    until = (now - timedelta(days=1)).strftime("%Y%m%d")
    expiring = write_signers(tmp_path / "expiring",
                             f'alice valid-before="{until}" {public(keys["alice"])}')
    before = statement(time=format_time(now - timedelta(days=3)))
    result = check(record(sign_approval(before, keys["alice"]), before), expiring,
                   not_before=format_time(now - timedelta(days=4)))
    assert result.verified, result.reason
    after = statement()
    result = check(record(sign_approval(after, keys["alice"]), after), expiring)
    assert result.problem == "key-not-valid"
    assert "has expired" in result.reason


def test_self_approval_is_caught_by_name_and_by_key(tmp_path, keys):
    shared = write_signers(tmp_path / "shared", f"alice,ops {public(keys['alice'])}",
                           f"bob {public(keys['bob'])}")
    as_ops = statement(approver="ops")
    by_ops = check(record(sign_approval(as_ops, keys["alice"]), as_ops), shared)
    assert by_ops.verified, by_ops.reason
    assert is_self_approval(by_ops, "ops")
    assert is_self_approval(by_ops, "alice", [fingerprint(keys["alice"])])
    assert not is_self_approval(by_ops, "alice", [fingerprint(keys["bob"])])


# --- head seals ----------------------------------------------------------------------------

TINY = 'runbook "Tiny" {}\nstep one "One" {\n  run "echo one"\n}\n'


def last_record(run_dir: Path) -> tuple[int, str, str]:
    """(seq, hash, time) of the transcript's last line, read as `verify` reads it."""
    import hashlib

    line = (run_dir / "transcript.jsonl").read_bytes().rstrip(b"\n").split(b"\n")[-1]
    fields = json.loads(line)
    return fields["seq"], hashlib.sha256(line).hexdigest(), fields["time"]


def test_a_real_transcripts_head_is_sealed_and_checked(ws, keys, signers, agent):
    (ws.root / "tiny.runbook").write_text(TINY)
    assert ws.runbook("run", "tiny.runbook").exit_code == 0
    (run_dir,) = run_dirs(ws.root / ".runbook" / "runs")
    seq, digest, time = last_record(run_dir)
    anchor = json.loads((run_dir / "head").read_text())
    assert (anchor["seq"], anchor["hash"]) == (seq, digest)
    agent.add(keys["alice"])
    seal = seal_head(run_dir.name, seq, digest, "alice")
    (run_dir / "head.sig").write_text(seal.to_json())
    stored = Signed.from_json((run_dir / "head.sig").read_text())
    result = check_seal(stored, run_id=run_dir.name, seq=seq, record_hash=digest,
                        signers=signers, not_before=time)
    assert result.verified, result.reason
    assert (result.signer, result.principals, result.fingerprint) == (
        "alice", ("alice",), fingerprint(keys["alice"]))
    assert result.describe() == f"sealed by alice (key {fingerprint(keys['alice'])})"
    later = check_seal(stored, run_id=run_dir.name, seq=seq + 1, record_hash="0" * 64,
                       signers=signers, not_before=time)
    assert (later.verified, later.problem) == (False, "other-head")
    assert later.reason == (f"the seal vouches for record {seq} ({digest[:12]}…), but the "
                            f"transcript ends at record {seq + 1} (000000000000…): records "
                            "were added, cut off or rewritten after it was sealed")


def test_every_seal_refusal_says_why(keys, signers):
    digest = "e3" * 32
    seal = seal_head(RUN, 7, digest, "bob", keys["bob"])
    forged = Signed(seal.statement.replace('"seq":7', '"seq":9'), seal.signature)
    as_seal = Signed(seal.statement, sign(seal.data(), APPROVAL, keys["bob"]))
    cases = [
        (None, 7, "unsigned", "the head is not signed"),
        (Signed(seal.statement, ""), 7, "unsigned", "the head is not signed"),
        (Signed("not json", seal.signature), 7, "bad-statement", "not JSON text"),
        (forged, 9, "bad-signature", "does not match the statement"),
        (as_seal, 7, "bad-signature", "for namespace 'runbook-approval', not 'runbook-head'"),
        (seal_head(RUN, 7, digest, "bob", keys["mallory"]), 7, "not-listed",
         "which is not listed for bob"),
        (seal_head(RUN, 7, digest, "bob", keys["alice"]), 7, "not-listed",
         "made with alice's ssh-ed25519 key"),
        (seal_head("20261130T090000Z-000001", 7, digest, "bob", keys["bob"]), 7, "other-run",
         f"the seal is for run 20261130T090000Z-000001, not {RUN}"),
        (seal, 6, "other-head", "the seal vouches for record 7"),
    ]
    for candidate, seq, problem, reason in cases:
        result = check_seal(candidate, run_id=RUN, seq=seq, record_hash=digest,
                            signers=signers, not_before=None)
        assert (result.verified, result.problem) == (False, problem), (candidate, result)
        assert reason in result.reason, (reason, result.reason)
        assert result.describe() == f"the head's seal does not verify: {result.reason}"


def test_a_seal_made_by_a_key_listed_for_two_names_names_both(tmp_path, keys):
    shared = write_signers(tmp_path / "shared", f"alice,ops {public(keys['alice'])}")
    seal = seal_head(RUN, 0, "00" * 32, "ops", keys["alice"])
    result = check_seal(seal, run_id=RUN, seq=0, record_hash="00" * 32, signers=shared,
                        not_before=None)
    assert result.verified, result.reason
    assert (result.signer, result.principals) == ("ops", ("alice", "ops"))



# --- reading a signers file ----------------------------------------------------------------

GOOD_OPTIONS = ['namespaces="runbook-approval"', 'valid-after="20200101"',
                'valid-before="20990101Z"', 'valid-after="202001011200"']
BAD_OPTIONS = ["valid-before=20990101", 'valid-after="2020"', "bogus", "namespaces=git"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(st.sampled_from(GOOD_OPTIONS + BAD_OPTIONS), max_size=2),
                          st.sampled_from(["key", "key comment", "cut", "junk"])),
                min_size=1, max_size=4))
def test_read_signers_flags_exactly_the_lines_ssh_keygen_skips(keys, lines):
    """Checked against ssh-keygen itself: a line is flagged iff ssh-keygen will not use it."""
    key = public(keys["alice"])
    forms = {"key": key, "key comment": f"{key} alice@laptop", "cut": key[:40], "junk": "xyz"}
    text = [f"p{n} {','.join(options)} {forms[form]}".replace("  ", " ")
            for n, (options, form) in enumerate(lines)]
    with tempfile.TemporaryDirectory() as scratch:
        path = write_signers(Path(scratch) / "signers", "# team", *text)
        signature = sign(b"data", APPROVAL, keys["alice"])
        flagged = {int(p.split(":")[1]) - 2 for p in read_signers(path).problems}
        usable = {n for n in range(len(lines))
                  if verify(b"data", signature, f"p{n}", APPROVAL, path).ok}
    assert flagged == set(range(len(lines))) - usable, text


def test_read_signers_names_each_mistake(tmp_path, keys):
    key = public(keys["alice"])
    path = write_signers(tmp_path / "signers", "# approvers", "",
                         f"alice {key}",
                         f"bob valid-before=20270101 {key}",
                         f'carol valid-after="2027" {key}',
                         f"dave bogus {key}",
                         f"erin {key[:30]}",
                         "frank",
                         f'"grace hopper,gh" namespaces="runbook-approval" {key} grace',
                         f"heidi,,h2 cert-authority {key}")
    signers = read_signers(path)
    assert signers.problems == [
        f'{path}:4: valid-before needs a quoted value (valid-before="20270101"); ssh-keygen '
        "skips the line otherwise",
        f'{path}:5: valid-after="2027" is not a time (YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])',
        f"{path}:6: unknown option 'bogus'",
        f"{path}:7: the ssh-ed25519 key is not readable (cut short or mistyped?)",
        f"{path}:8: a line needs principals and a key",
    ]
    assert [(e.line, e.principals, e.options) for e in signers.entries] == [
        (3, ("alice",), {}),
        (9, ("grace hopper", "gh"), {"namespaces": "runbook-approval"}),
        (10, ("heidi", "h2"), {"cert-authority": None})]
    assert [e.line for e in signers.keys_for("gh")] == [9]
    assert signers.entries[0].key.fingerprint == fingerprint(keys["alice"])


def test_an_empty_or_unreadable_signers_file_is_reported(tmp_path):
    empty = write_signers(tmp_path / "empty", "# nobody yet")
    assert read_signers(empty).problems == [f"{empty}: lists no keys"]
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    with pytest.raises(SignersError, match="is not UTF-8 text"):
        read_signers(tmp_path / "binary")
    with pytest.raises(SignersError, match="does not exist"):
        read_signers(tmp_path / "missing")
