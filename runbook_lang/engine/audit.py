"""Audit a recorded run: what `runbook verify` checks and `runbook show` reports (§9, §13).

The store checks the bytes (`RunStore.verify`: chain, head file, snapshot, output logs, a
head kept elsewhere). Given an allowed-signers file, the audit adds the signatures: the
operator's seal over the head, and every signed gate decision, re-checked as the run checked
it (signature, key listed for the name, this run, this gate, this runbook version, the time
between the run's start and the record). Every finding is a `Problem` with the line it
concerns, so `problems[0]` names the first bad place whatever found it.
"""

from __future__ import annotations

from pathlib import Path

from ..dataclass import dataclass, field
from ..store import RunRef, RunStore
from ..store.chain import Problem, VerifyResult
from ..trust import (
    HeadStatement,
    Signed,
    StatementError,
    check_approval,
    check_seal,
)
from ..trust.armor import MalformedSignature, read_signature
from ..trust.statements import parse_time

DECIDED = ("gate_approved", "gate_rejected")


@dataclass
class Decision:
    """One recorded gate decision and what the audit found about its signature."""

    line: int
    event: str
    gate: str
    approver: str
    identity: str  # verified, asserted
    verdict: str  # one line: "signed by bob (key SHA256:…)", "asserted (not signed)", why not

    def describe(self) -> str:
        verb = "approved" if self.event == "gate_approved" else "rejected"
        return f"gate {self.gate} {verb} by {self.approver}: {self.verdict}"


@dataclass
class Audit:
    """The outcome of an audit: the chain's result plus, with signers, the seal and the
    decisions."""

    chain: VerifyResult
    signers: Path | None = None
    sealed: str | None = None  # "sealed by alice (key …) at record 41", when it verifies
    decisions: list[Decision] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_run(store: RunStore, ref: RunRef, *, signers: Path | None = None,
              head: str | None = None) -> Audit:
    """Check a run's record; with `signers`, its seal and every signed decision too.

    Raises `TrustError` when signatures cannot be checked at all (signers file unusable,
    ssh-keygen missing)."""
    chain = store.verify(ref, head)
    audit = Audit(chain, signers, problems=list(chain.problems))
    if signers is not None and chain.records:
        records, _ = store.records(ref)
        _audit_seal(audit, store.seal(ref), records, chain.head, signers)
        _audit_decisions(audit, records, signers)
    audit.problems.sort(key=lambda p: p.line)
    return audit


def _audit_seal(audit: Audit, text: str | None, records: list[dict], head: str | None,
                signers: Path) -> None:
    last = len(records)
    run_id = records[0].get("run_id", "") if records else ""
    if text is None:
        audit.problems.append(Problem(last + 1, None, (
            "the head is not signed: no stop of this run was sealed (run with --sign-with "
            "KEY, RUNBOOK_SIGNING_KEY or a key in ssh-agent listed for the operator)")))
        return
    try:
        seal = Signed.from_json(text)
    except StatementError as error:
        audit.problems.append(Problem(last + 1, None, f"the head's seal is not readable: {error}"))
        return
    claimed = _claimed(seal)
    hashes = _hashes(records, head)
    if claimed is not None and hashes.get(claimed.seq) == claimed.hash:
        at = next(r for r in records if r.get("seq") == claimed.seq)
        check = check_seal(seal, run_id=run_id, seq=claimed.seq, record_hash=claimed.hash,
                           signers=signers, not_before=at.get("time"))
        line = claimed.seq + 1
    else:
        at = records[-1]
        check = check_seal(seal, run_id=run_id, seq=at.get("seq", -1),
                           record_hash=head or "0" * 64, signers=signers, not_before=None)
        line = claimed.seq + 1 if claimed is not None and claimed.seq < last else last + 1
    if not check.verified:
        audit.problems.append(Problem(line, check.statement.seq if check.statement else None,
                                      check.describe()))
        return
    assert check.statement is not None
    audit.sealed = f"{check.describe()} at record {check.statement.seq}"
    if check.statement.seq < records[-1].get("seq", -1):
        after = check.statement.seq + 1
        audit.problems.append(Problem(after + 1, after, (
            f"records {after}–{records[-1].get('seq')} come after the signed head (record "
            f"{check.statement.seq}, {check.describe()}): no key sealed them (a later stop "
            "without a signing key, or records added since)")))


def _audit_decisions(audit: Audit, records: list[dict], signers: Path) -> None:
    started = records[0] if records and records[0].get("event") == "run_started" else {}
    claimed_signers = bool(started.get("signers"))
    for rec in records:
        if rec.get("event") not in DECIDED:
            continue
        line = rec.get("seq", -1) + 1
        gate, approver = str(rec.get("gate")), str(rec.get("approver"))
        if not rec.get("signature"):
            decision = Decision(line, rec["event"], gate, approver, "asserted",
                                "asserted (not signed)")
            audit.decisions.append(decision)
            if claimed_signers:
                audit.problems.append(Problem(line, rec.get("seq"), (
                    f"{decision.describe()}, though the run counted only signed decisions")))
            continue
        recorded = {"approver": approver, "reason": rec.get("reason") or "",
                    "decision": "reject" if rec["event"] == "gate_rejected" else "approve",
                    "statement": rec.get("statement"), "signature": rec.get("signature")}
        check = check_approval(recorded, run_id=str(rec.get("run_id")),
                               runbook_sha256=str(started.get("sha256")), gate=gate,
                               signers=signers, not_before=started.get("time"),
                               now=_moment(rec.get("time")))
        decision = Decision(line, rec["event"], gate, approver,
                            "verified" if check.verified else "asserted", check.describe())
        audit.decisions.append(decision)
        if not check.verified:
            audit.problems.append(Problem(line, rec.get("seq"), decision.describe()))


def seal_summary(text: str | None) -> str | None:
    """Who sealed the head, as the seal itself says (not verified): for `runbook show`."""
    if text is None:
        return None
    try:
        seal = Signed.from_json(text)
        statement = HeadStatement.from_bytes(seal.data())
        key = read_signature(seal.signature).fingerprint
    except (StatementError, MalformedSignature, UnicodeEncodeError):
        return "a seal that cannot be read"
    return (f"{statement.signer} (key {key}) at record {statement.seq}, {statement.time}")


def _claimed(seal: Signed) -> HeadStatement | None:
    try:
        return HeadStatement.from_bytes(seal.data())
    except (StatementError, UnicodeEncodeError):
        return None


def _hashes(records: list[dict], head: str | None) -> dict[object, str | None]:
    """Each record's hash by seq: the next record's `prev`, and the chain's head for the
    last (the chain check has compared them with the bytes)."""
    out: dict[object, str | None] = {}
    for index, rec in enumerate(records):
        following = records[index + 1].get("prev") if index + 1 < len(records) else head
        out[rec.get("seq")] = following if isinstance(following, str) else None
    return out


def _moment(stamp: object):
    try:
        return parse_time(stamp) if isinstance(stamp, str) else None
    except StatementError:
        return None
