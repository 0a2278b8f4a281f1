"""Who decided, verified: signed votes at gates and the operator's key (LANGUAGE.md §6.3, §13).

A runbook that names `signers` counts a gate decision only with an SSH signature over its
canonical statement (run id, runbook SHA-256, gate, decision, reason, time, approver), made
with a key the signers file lists for the approver, whichever way the decision arrives: the
terminal prompt, `runbook approve`, `--approve` for the operator. Without `signers`, names are
asserted, as before; the record says which.

The operator's key (`--sign-with KEY`, else `RUNBOOK_SIGNING_KEY`, else, under `signers`, a
key ssh-agent holds that is listed for the operator) is proven before anything runs: it
signs a probe that must verify as the operator's. Its fingerprint goes into `run_started`,
it seals the head at every stop, and under `self_approval false` a vote signed with it, or
under a name its signers line also lists, is the operator's own and does not count.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..dataclass import dataclass, field
from ..digest import sha256_hex
from ..errors import EvalError, RecordError, Refused
from ..hints import TYPE_CHECKING
from ..trust.errors import SigningKeyError, TrustError

if TYPE_CHECKING:
    from typing import Any

    from ..trust import ApprovalCheck
    from ..trust.sshsig import KeySpec

# The signing code (ssh-keygen's driver, the armour, the statements) is imported where a
# run signs or checks something: most runs never do, and it costs a run's start ~10 ms.

ZERO = "0" * 64


@dataclass(frozen=True)
class OperatorKey:
    """The key the operator signs with, proven to sign (and, under `signers`, to be listed
    for the operator)."""

    spec: KeySpec
    label: str  # how it was given, for messages
    fingerprint: str
    principals: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"fingerprint": self.fingerprint, "principals": list(self.principals)}


@dataclass
class Vote:
    """One decision at a gate, however it arrived, with its signature when it has one."""

    approver: str
    decision: str  # approve, reject
    reason: str
    method: str  # terminal, flag, approve-command
    host: str | None
    time: str  # when it was decided (the signed time, when signed)
    statement: str | None = None
    signature: str | None = None
    decision_id: str | None = None
    # Set once counted under `signers`: the signing key's fingerprint.
    key: str | None = None
    # The approver is the database role that recorded it (a team store, LANGUAGE.md §12).
    by_role: bool = False

    @classmethod
    def stored(cls, decision: dict) -> Vote:
        """A decision `runbook approve` kept beside the run."""
        # A line written by other means has no id: its content names it, so that it is
        # recorded (and refused) once, not at every resume.
        ident = _text(decision.get("id")) or sha256_hex(json.dumps(
            decision, sort_keys=True, default=str).encode())[:16]
        return cls(str(decision.get("approver")), "reject" if decision.get("reject")
                   else "approve", str(decision.get("reason") or ""), "approve-command",
                   _text(decision.get("host")), str(decision.get("time") or ""),
                   _text(decision.get("statement")), _text(decision.get("signature")), ident,
                   by_role=decision.get("identity") == "database role")

    def as_recorded(self) -> dict[str, Any]:
        """What `check_approval` reads."""
        return {"approver": self.approver, "decision": self.decision, "reason": self.reason,
                "statement": self.statement, "signature": self.signature}

    def fields(self) -> dict[str, Any]:
        """The fields of its `gate_approved` / `gate_rejected` / `gate_refused` record."""
        out: dict[str, Any] = {"approver": self.approver, "method": self.method,
                               "reason": self.reason, "host": self.host,
                               "decided_at": self.time,
                               "identity": "verified" if self.key or self.by_role
                               else "asserted"}
        if self.by_role:
            out["verified_by"] = "database role"
        if self.key:
            out["key"] = self.key
        if self.signature:
            out.update(statement=self.statement, signature=self.signature)
        if self.decision_id:
            out["decision_id"] = self.decision_id
        return out


@dataclass
class RunTrust:
    """What a run knows about identities: the signers file, the operator's key, and what
    binds a signature to this run."""

    signers: Path | None
    operator: str
    key: OperatorKey | None = None
    run_id: str = ""
    runbook_sha256: str = ""
    started_at: str | None = None
    # The operator who started the run and their key (from run_started): who
    # `self_approval false` excludes.
    starter: str | None = None
    starter_key: dict | None = None
    # Stored decisions already in the record (by id): never counted or refused twice.
    recorded: set[str] = field(default_factory=set)

    @property
    def verifies(self) -> bool:
        """Whether votes must be signed (the runbook names `signers`)."""
        return self.signers is not None

    def bind(self, started: dict) -> None:
        """Take the run's identity from its `run_started` record."""
        self.run_id = str(started.get("run_id") or self.run_id)
        self.runbook_sha256 = str(started.get("sha256") or "")
        self.started_at = started.get("time")
        self.starter = (started.get("operator") or {}).get("user")
        self.starter_key = started.get("operator_key")

    def check(self, vote: Vote, gate: str) -> ApprovalCheck:
        """Whether the vote's signature counts for this run and gate (see trust.approvals)."""
        assert self.signers is not None
        from ..trust import check_approval

        return check_approval(vote.as_recorded(), run_id=self.run_id,
                              runbook_sha256=self.runbook_sha256, gate=gate,
                              signers=self.signers, not_before=self.started_at)

    def operators_own(self, check: ApprovalCheck) -> str | None:
        """Why a verified vote is the operator's own under another name (None if not)."""
        key = self.starter_key or {}
        if check.fingerprint and check.fingerprint == key.get("fingerprint"):
            return (f"{check.approver}'s vote is signed with the key of the operator who "
                    f"started the run ({self.starter}, key {check.fingerprint}); under "
                    "self_approval false the operator does not approve their own run, "
                    "under any name")
        if check.approver in (key.get("principals") or ()):
            return (f"{check.approver} is listed with the same key as the operator who "
                    f"started the run ({self.starter}): one person, under self_approval false")
        return None

    def sign(self, gate: str, vote: Vote, key: KeySpec) -> None:
        """Sign `vote` for this run and gate with `key` (TrustError if it cannot)."""
        from ..trust import ApprovalStatement, sign_approval

        statement = ApprovalStatement(self.run_id, self.runbook_sha256, gate,
                                      "reject" if vote.decision == "reject" else "approve",
                                      vote.reason, vote.time, vote.approver)
        signed = sign_approval(statement, key)
        vote.statement, vote.signature = signed.statement, signed.signature


def signers_record(path: Path | None) -> dict | None:
    """`run_started.signers`: the file a run checks identities against, and its SHA-256."""
    if path is None:
        return None
    try:
        digest = sha256_hex(path.read_bytes())
    except OSError:
        digest = None
    return {"path": str(path), "sha256": digest}


def agent_key_for(name: str, signers: Path) -> str | None:
    """A key ssh-agent holds that `signers` lists for `name` ("key::TYPE BASE64"), or None
    (no agent, or none of its keys is listed for the name)."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        return None
    try:
        from ..trust import read_signers
        from ..trust.tool import agent_keys

        listed = {entry.key.blob for entry in read_signers(signers).keys_for(name)}
        held = agent_keys()
    except TrustError:
        return None
    for key in held:
        if key.blob in listed:
            return "key::" + key.line()
    return None


def operator_key_spec(explicit: str | None, signers: Path | None,
                      operator: str) -> tuple[KeySpec, str] | None:
    """How the operator signs, and how it was given: `--sign-with`, RUNBOOK_SIGNING_KEY, or
    (only under `signers`) an agent key listed for the operator. None: no key."""
    if explicit:
        return os.path.expanduser(explicit), f"--sign-with {explicit}"
    if os.environ.get("RUNBOOK_SIGNING_KEY"):
        given = os.environ["RUNBOOK_SIGNING_KEY"]
        return os.path.expanduser(given), f"RUNBOOK_SIGNING_KEY={given}"
    if signers is not None:
        found = agent_key_for(operator, signers)
        if found is not None:
            return found, f"the ssh-agent key listed for {operator}"
    return None


def prove_key(spec: KeySpec, label: str, operator: str, run_id: str,
              signers: Path | None) -> OperatorKey:
    """Sign a probe with the operator's key and, under `signers`, check that it is listed
    for the operator: before anything runs, not at the first stop. Refused says why."""
    from ..trust import check_seal, seal_head
    from ..trust.armor import read_signature

    try:
        probe = seal_head(run_id, 0, ZERO, operator, spec)
    except TrustError as error:
        raise Refused(f"{label}: {error}; nothing was run") from None
    fingerprint = read_signature(probe.signature).fingerprint
    if signers is None:
        return OperatorKey(spec, label, fingerprint)
    try:
        checked = check_seal(probe, run_id=run_id, seq=0, record_hash=ZERO, signers=signers,
                             not_before=None)
    except TrustError as error:
        raise Refused(f"{label}: {error}; nothing was run") from None
    if not checked.verified:
        raise Refused(f"{label} cannot sign for the operator {operator}: {checked.reason}; "
                      "nothing was run")
    return OperatorKey(spec, label, fingerprint, checked.principals)


def seal_stop(writer, trust: RunTrust | None) -> str | None:
    """At a stop: the operator's key signs the head the writer just closed. Returns what to
    tell the operator (None without a key)."""
    if trust is None:
        return None
    if trust.key is None:
        if not trust.verifies:
            return None
        # Under `signers`, `verify --signers` expects a seal: say now why there is none.
        return ("the head is not sealed: no key of the operator's (--sign-with, "
                "RUNBOOK_SIGNING_KEY or ssh-agent); runbook verify --signers will report it")
    from ..trust import seal_head, utc_now

    try:
        signed = seal_head(writer.run_id, writer.last_seq, writer.head, trust.operator,
                           trust.key.spec, time=utc_now())
        writer.seal(signed.to_json())
    except (TrustError, RecordError) as error:  # the run's outcome stands; say so
        return f"the head was not sealed: {error}"
    return (f"sealed: record {writer.last_seq} signed by {trust.operator} "
            f"(key {trust.key.fingerprint})")


def approver_key(explicit: str | None, name: str, signers: Path) -> KeySpec:
    """The key an approver signs with: `--key`, else an agent key listed for them."""
    if explicit:
        return os.path.expanduser(explicit)
    found = agent_key_for(name, signers)
    if found is not None:
        return found
    if os.environ.get("SSH_AUTH_SOCK"):
        raise SigningKeyError(f"ssh-agent holds no key listed for {name} in {signers}: give "
                              "--key KEY_FILE")
    raise SigningKeyError(f"no key to sign as {name}: give --key KEY_FILE, or run ssh-agent "
                          f"with a key listed for {name} in {signers}")


def require_identities(module, evaluate, approvals: dict[str, list[str | None]],
                       trust: RunTrust, *, run_id: str | None = None,
                       done: frozenset[str] = frozenset()) -> None:
    """Refuse, before anything runs, what signatures make impossible under `signers`:

    - `--approve GATE=WHO` for someone else: WHO's signature must be over this run's id,
      which a new run does not have yet (`run_id` None); on a resume WHO signs with
      `runbook approve`, which binds it to the run;
    - `--approve GATE` without a key to sign it as the operator;
    - a gate that may run with `self_approval false` while the operator who started the run
      has no proven key: nobody could tell the operator's vote from another's.

    `evaluate(expr)` gives a gate attribute's value before the run (raises EvalError when
    only the run knows it); `done` names the gates a resumed run has passed."""
    if not trust.verifies:
        return
    where = f"signers \"{trust.signers}\""
    for gate in module.runbook.of("gate"):
        name = gate.name.name
        for who in approvals.get(name, []):
            if who is not None and who != trust.operator:
                later = (f"let the run pause at the gate, then {who} approves it: runbook "
                         f"approve RUN_ID {name} --as {who} --key KEY, and runbook resume "
                         "RUN_ID") if run_id is None else (
                         f"{who} approves it with: runbook approve {run_id} {name} --as "
                         f"{who} --key KEY")
                why = ("a new run's id is not known before it starts, so nobody can have "
                       "signed for it" if run_id is None else
                       f"an approval by {who} must be signed by {who}")
                raise Refused(f"--approve {name}={who}: this runbook counts only signed "
                              f"approvals ({where}), and {why}; {later}")
            if trust.key is None:
                raise Refused(f"--approve {name}: this runbook counts only signed approvals "
                              f"({where}); sign as {trust.operator} with --sign-with KEY, "
                              f"RUNBOOK_SIGNING_KEY, or a key listed for {trust.operator} "
                              "in ssh-agent")
        if name in done or trust.starter_key is not None or not _may_exclude(gate, evaluate):
            continue
        if run_id is None:
            raise Refused(f"gate {name} has self_approval false and this runbook verifies "
                          f"identities ({where}): the operator's must be verified too; give "
                          f"--sign-with KEY (a key listed for {trust.operator}), set "
                          "RUNBOOK_SIGNING_KEY, or add that key to ssh-agent; nothing was run")
        raise Refused(f"gate {name} has self_approval false, but run {run_id} was started "
                      "without a key proving who its operator is, so no vote at the gate "
                      "could be told from the operator's; start a new run with --sign-with "
                      "KEY")


def _may_exclude(gate, evaluate) -> bool:
    """Whether the gate may run and exclude the operator (unknown counts as yes)."""
    def value(expr, default):
        if expr is None:
            return default
        try:
            return evaluate(expr)
        except EvalError:
            return None
    return value(gate.when, True) is not False and value(gate.self_approval, True) is not True


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
