"""Signed approvals: make one, and decide whether a recorded one counts.

An approval counts under a `signers` file only if it is *verified*: its statement is
signed, with a key the signers file lists for the approver's name, in the
`runbook-approval` namespace, for this run, this gate and this version of the runbook, and
says what the record says (approver, decision, reason). Anything else is refused with one
line saying why, so the run and the report can show it.

The key's `valid-after`/`valid-before` are judged at the statement's signed time (as git
judges a commit at its date), so an approval stays verifiable after the key expires; the
signed time itself must fall between the run's start (`not_before`) and now, so a key
cannot be used with a back-dated statement outside the run's life.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from ..dataclass import dataclass
from .errors import StatementError
from .sshsig import SIGNATURE_PROBLEM, KeySpec, SignatureProblem, Verdict, sign, verify
from .statements import APPROVAL_NAMESPACE, CLOCK_SKEW, ApprovalStatement, Signed, parse_time
from .tool import CHECK_TIMEOUT, SIGN_TIMEOUT

Refusal = SignatureProblem | Literal["bad-statement", "other-run", "other-gate",
                                     "other-runbook", "approver-mismatch",
                                     "decision-mismatch", "reason-mismatch", "out-of-time"]


@dataclass(frozen=True)
class ApprovalCheck:
    """Whether a recorded approval counts: `verified`, or `problem` and a one-line `reason`.

    `approver` is the recorded name; `fingerprint` the signing key's, when readable;
    `statement` the signed statement, when it could be read.
    """

    verified: bool
    approver: str
    problem: Refusal | None
    reason: str
    fingerprint: str | None = None
    statement: ApprovalStatement | None = None

    def describe(self) -> str:
        """One line for a report: 'signed by alice (key SHA256:…)' or 'not counted: …'."""
        if self.verified:
            return f"signed by {self.approver} (key {self.fingerprint})"
        return f"not counted: {self.reason}"


def sign_approval(statement: ApprovalStatement, key: KeySpec = None, *,
                  timeout: float = SIGN_TIMEOUT) -> Signed:
    """Sign `statement` with `key` (see `sshsig.sign`) in the `runbook-approval` namespace."""
    data = statement.to_bytes()
    return Signed(data.decode("utf-8"), sign(data, APPROVAL_NAMESPACE, key, timeout=timeout))


def check_approval(recorded: Mapping[str, Any], *, run_id: str, runbook_sha256: str,
                   gate: str, signers: str | os.PathLike[str], not_before: datetime | str | None,
                   now: datetime | None = None,
                   timeout: float = CHECK_TIMEOUT) -> ApprovalCheck:
    """Decide whether `recorded` counts as a verified approval of `gate` in this run.

    `recorded` holds `approver`, `decision` ("approve"/"reject") or `reject` (a bool, as in
    approvals.jsonl), `reason`, and the signed `statement` (text) and `signature`.
    `run_id`, `runbook_sha256` and `gate` are what the approval must be for; `not_before`
    (the run's start: `run_started.time`) and `now` bound the signed time. `not_before` has
    no default on purpose: None lets a listed key back-date an approval to before the run,
    to a time when the key was still valid. Raises only when the check cannot be
    made at all (signers file unusable, ssh-keygen missing or stuck).
    """
    approver = recorded.get("approver")
    if not isinstance(approver, str) or not approver:
        return ApprovalCheck(False, str(approver or ""), "bad-statement",
                             "the record names no approver")

    def refuse(problem: Refusal, reason: str, verdict: Verdict | None = None,
               statement: ApprovalStatement | None = None) -> ApprovalCheck:
        return ApprovalCheck(False, approver, problem, reason,
                             verdict.fingerprint if verdict else None, statement)

    signature = recorded.get("signature")
    if not isinstance(signature, str) or not signature.strip():
        return refuse("unsigned", f"the approval by {approver} is not signed")
    try:
        statement = ApprovalStatement.from_bytes(_statement_bytes(recorded.get("statement")))
    except StatementError as error:
        return refuse("bad-statement", f"the signed statement cannot be read: {error}")
    verdict = verify(statement.to_bytes(), signature, statement.approver, APPROVAL_NAMESPACE,
                     signers, at=parse_time(statement.time), timeout=timeout)
    if not verdict.ok:
        assert verdict.problem is not None
        return refuse(SIGNATURE_PROBLEM[verdict.problem], verdict.reason, verdict, statement)

    def differs(problem: Refusal, reason: str) -> ApprovalCheck:
        return refuse(problem, reason, verdict, statement)

    if statement.run_id != run_id:
        return differs("other-run", f"the signature is for run {statement.run_id}, not "
                       f"{run_id}: a signature replayed from another run")
    if statement.gate != gate:
        return differs("other-gate", f"the signature is for gate {statement.gate}, not "
                       f"{gate}: a signature replayed from another gate")
    if statement.runbook_sha256 != runbook_sha256:
        return differs("other-runbook", "the signature is for another version of the "
                       f"runbook (SHA-256 {statement.runbook_sha256[:12]}…, this run's is "
                       f"{runbook_sha256[:12]}…)")
    if statement.approver != approver:
        return differs("approver-mismatch", f"the record names {approver}, but "
                       f"{statement.approver} signed the statement")
    decision = _decision(recorded)
    if decision is None:
        return differs("decision-mismatch", "the record's decision and reject fields "
                       "contradict each other")
    if decision != statement.decision:
        return differs("decision-mismatch", f"the record says {decision}, but the signed "
                       f"statement says {statement.decision}")
    reason = recorded.get("reason") or ""
    if reason != statement.reason:
        return differs("reason-mismatch", f"the recorded reason {_short(reason)} is not the "
                       f"signed one {_short(statement.reason)}")
    signed_at = parse_time(statement.time)
    start = parse_time(not_before) if isinstance(not_before, str) else not_before
    if start is not None and signed_at < start - CLOCK_SKEW:
        return differs("out-of-time", f"the statement is dated {statement.time}, before "
                       "the run started")
    if signed_at > (now or datetime.now(UTC)) + CLOCK_SKEW:
        return differs("out-of-time", f"the statement is dated {statement.time}, in the "
                       "future")
    return ApprovalCheck(True, approver, None, "", verdict.fingerprint, statement)


def is_self_approval(check: ApprovalCheck, operator: str,
                     operator_fingerprints: Iterable[str] = ()) -> bool:
    """Did the run's operator make this verified approval (for `self_approval false`)?

    True when the approver is the operator's name, or when the approval was signed with a
    key the operator is known to hold (a fingerprint from the operator's verified seal):
    one person cannot approve their own run under two names with one key.
    """
    if check.approver == operator:
        return True
    return check.fingerprint is not None and check.fingerprint in set(operator_fingerprints)


def _decision(recorded: Mapping[str, Any]) -> str | None:
    """The recorded decision; None when `decision` and `reject` disagree."""
    flagged = "reject" if recorded.get("reject") else "approve"
    if "decision" not in recorded:
        return flagged
    decision = str(recorded["decision"])
    return decision if "reject" not in recorded or decision == flagged else None


def _statement_bytes(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise StatementError("the record carries no statement")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise StatementError("the statement is not valid Unicode text") from None


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "…")
