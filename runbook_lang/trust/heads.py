"""Signed heads: seal where a transcript ends, and check a seal against the transcript.

The `head` file names the last record's seq and hash; whoever can rewrite the whole chain
can rewrite `head` too. A seal is the operator's SSH signature over a `HeadStatement`
(run id, last seq and hash, time, signer) in the `runbook-head` namespace: rewriting the
chain then needs the operator's private key as well, and `verify --signers` names who sealed
it. A seal proves the transcript *up to its head*: records cut off after a stop and the
seal re-made by someone holding a listed key are not detectable from the run directory
alone (see docs/signatures.md).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Literal

from ..dataclass import dataclass
from .errors import StatementError
from .sshsig import SIGNATURE_PROBLEM, KeySpec, SignatureProblem, find_principals, sign, verify
from .statements import CLOCK_SKEW, HEAD_NAMESPACE, HeadStatement, Signed, parse_time, utc_now
from .tool import CHECK_TIMEOUT, SIGN_TIMEOUT

SealProblem = SignatureProblem | Literal["bad-statement", "other-run", "other-head",
                                         "out-of-time"]


@dataclass(frozen=True)
class SealCheck:
    """Whether a seal vouches for this transcript's head, and who made it.

    `signer` is the name in the statement (verified when `verified`); `principals` are all
    names the signers file lists for the sealing key (from `find_principals`);
    `fingerprint` is the key's. `problem` and the one-line `reason` say why not.
    """

    verified: bool
    problem: SealProblem | None
    reason: str
    signer: str | None = None
    principals: tuple[str, ...] = ()
    fingerprint: str | None = None
    statement: HeadStatement | None = None

    def describe(self) -> str:
        """One line for `verify`: 'sealed by alice (key SHA256:…)' or why not."""
        if self.verified:
            return f"sealed by {self.signer} (key {self.fingerprint})"
        return f"the head's seal does not verify: {self.reason}"


def seal_head(run_id: str, seq: int, record_hash: str, signer: str, key: KeySpec = None, *,
              time: str | None = None, timeout: float = SIGN_TIMEOUT) -> Signed:
    """Sign that run `run_id`'s transcript ends at record `seq` with hash `record_hash`."""
    statement = HeadStatement(run_id, seq, record_hash, time or utc_now(), signer)
    data = statement.to_bytes()
    return Signed(data.decode("utf-8"), sign(data, HEAD_NAMESPACE, key, timeout=timeout))


def check_seal(seal: Signed | None, *, run_id: str, seq: int, record_hash: str,
               signers: str | os.PathLike[str], not_before: datetime | str | None,
               now: datetime | None = None, timeout: float = CHECK_TIMEOUT) -> SealCheck:
    """Check `seal` against the transcript's last record (`seq`, `record_hash`).

    `not_before` (the last record's time) and `now` bound the sealed time, as for approvals.
    Raises only when the check cannot be made (signers file, ssh-keygen).
    """
    if seal is None or not seal.signature.strip():
        return SealCheck(False, "unsigned", "the head is not signed")
    try:
        statement = HeadStatement.from_bytes(seal.data())
    except (StatementError, UnicodeEncodeError) as error:
        return SealCheck(False, "bad-statement", f"the seal's statement cannot be read: {error}")
    at = parse_time(statement.time)
    verdict = verify(statement.to_bytes(), seal.signature, statement.signer, HEAD_NAMESPACE,
                     signers, at=at, timeout=timeout)
    if not verdict.ok:
        assert verdict.problem is not None
        return SealCheck(False, SIGNATURE_PROBLEM[verdict.problem], verdict.reason,
                         statement.signer, (), verdict.fingerprint, statement)
    names = tuple(find_principals(statement.to_bytes(), seal.signature, HEAD_NAMESPACE, signers,
                                  at=at, timeout=timeout))

    def refuse(problem: SealProblem, reason: str) -> SealCheck:
        return SealCheck(False, problem, reason, statement.signer, names, verdict.fingerprint,
                         statement)

    if statement.run_id != run_id:
        return refuse("other-run", f"the seal is for run {statement.run_id}, not {run_id}")
    if (statement.seq, statement.hash) != (seq, record_hash):
        return refuse("other-head", f"the seal vouches for record {statement.seq} "
                      f"({statement.hash[:12]}…), but the transcript ends at record {seq} "
                      f"({record_hash[:12]}…): records were added, cut off or rewritten "
                      "after it was sealed")
    start = parse_time(not_before) if isinstance(not_before, str) else not_before
    if start is not None and at < start - CLOCK_SKEW:
        return refuse("out-of-time", f"the seal is dated {statement.time}, before the "
                      "record it vouches for")
    if at > (now or datetime.now(UTC)) + CLOCK_SKEW:
        return refuse("out-of-time", f"the seal is dated {statement.time}, in the future")
    return SealCheck(True, None, "", statement.signer, names, verdict.fingerprint, statement)
