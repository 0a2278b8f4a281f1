"""`runbook approve`: a decision for a run that waits at a gate, kept beside the run.

The run is not running: the gate's rules come from its `gate_waiting` record, and the same
rule book as at the gate (`approvals.Quorum`, and under `signers` the signature) is applied
now, so that a refusal is said at once and nothing is kept. The gate writes the decision
into the record when the run resumes, and checks it again there.
"""

from __future__ import annotations

import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path

from ..dataclass import dataclass
from ..errors import Refused, StoreError
from ..store import RunStore
from ..trust import TrustError
from ..trust.statements import format_time
from .approvals import Quorum
from .resumption import epoch, last_status, parse_text
from .runtime import Clock, SystemClock
from .signoff import RunTrust, Vote, approver_key


@dataclass
class ApproveRequest:
    """`runbook approve RUN_ID GATE --as NAME [--reject] [--reason TEXT] [--key FILE]`."""

    ref: str
    gate: str
    # Who decides: `--as`, else RUNBOOK_USER, else the login name; in a team store, the
    # connection's database role (an `--as` naming another is refused).
    as_name: str | None = None
    reject: bool = False
    reason: str | None = None
    # The approver's key (a private key file, or a public one whose private half ssh-agent
    # holds); without it, under `signers`, a key ssh-agent holds that is listed for the name.
    key: str | None = None


def approve(request: ApproveRequest, store: RunStore, clock: Clock | None = None) -> str:
    """Keep a decision for a run that waits at a gate; returns what to tell the person.

    The same rules as at the gate (`approvals.Quorum`), checked now so that a refusal is
    said at once; under `signers` the decision is signed with the approver's key and checked
    against the signers file before it is kept (the run checks it again when it resumes)."""
    clock = clock or SystemClock()
    ref = store.resolve(request.ref)
    if ref is None:
        raise Refused(f"no run {request.ref!r} here (see runbook history)")
    run, gate, who = ref.run_id, request.gate, approver_name(request.as_name, store)
    records, _ = store.records(ref)
    bad = store.verify(ref).tampered
    if bad:
        raise Refused(f"the transcript of {run} does not verify ({bad[0].reason}); no "
                      "decision is recorded for it")
    waits = [r for r in records if r.get("event") == "gate_waiting"]
    gates = {r["gate"] for r in waits} | gate_names(store.snapshot(ref))
    status = last_status(records)
    if status != "paused" or not waits:
        raise Refused(f"run {run} is not waiting at a gate (it is {status})")
    waiting = waits[-1]
    if gate != waiting["gate"]:
        if gate not in gates:
            raise Refused(f"run {run} has no gate {gate!r}; it waits at gate "
                          f"{waiting['gate']!r}")
        raise Refused(f"run {run} is not waiting at gate {gate!r}; it waits at gate "
                      f"{waiting['gate']!r}")
    first_wait = next(r for r in waits if r["gate"] == gate)
    timeout_ms = waiting.get("timeout_ms")
    if timeout_ms is not None and clock.time() - epoch(first_wait["time"]) > timeout_ms / 1000:
        raise Refused(f"gate {gate} of run {run} timed out (it waited since "
                      f"{first_wait['time']}); resuming ends the run as rejected: "
                      f"runbook resume {run}")
    trust = RunTrust(Path(waiting["signers"]) if waiting.get("signers") else None, who)
    trust.bind(records[0] if records else {})
    decisions = [d for d in store.decisions(ref) if d["gate"] == gate]
    if trust.verifies:
        # A line anyone wrote into the decisions file must not block the real person.
        decisions = [d for d in decisions if trust.check(Vote.stored(d), gate).verified]
    decided = list(waiting.get("approved") or [])
    decided += [r["approver"] for r in records
                if r.get("event") == "gate_approved" and r.get("gate") == gate]
    decided += [d["approver"] for d in decisions]
    quorum = Quorum.from_waiting(waiting)
    refusal = quorum.refusal(who, waiting.get("operator"), decided)
    if refusal is not None:
        raise Refused(refusal.message(run))
    vote = Vote(who, "reject" if request.reject else "approve", request.reason or "",
                "approve-command", socket.gethostname(), _now(clock),
                decision_id=secrets.token_hex(8))
    if trust.verifies or request.key:
        sign_vote(trust, vote, gate, request.key, quorum)
    try:
        kept = {"gate": gate, "approver": who, "reject": bool(request.reject),
                "reason": vote.reason, "time": vote.time, "host": vote.host,
                "method": "approve-command", "id": vote.decision_id,
                **({"statement": vote.statement, "signature": vote.signature}
                   if vote.signature else {})}
        store.add_decision(ref, kept)
    except StoreError as error:  # a team store's database refused it, or is unreachable
        raise Refused(f"not recorded: {error}") from None
    signed = f", signed with key {vote.key}" if vote.key else ""
    # Resume it the way it was named: a run directory or transcript outside the store's root
    # is not found by its id.
    again = request.ref if store.resolve(run) is None else run
    if request.reject:
        return (f"recorded: {who} rejects gate {gate} of run {run}{signed}\n"
                f"the run ends as rejected when resumed: runbook resume {again}")
    approvals = set(waiting.get("approved") or []) | {d["approver"] for d in decisions
                                                      if not d.get("reject")} | {who}
    left = quorum.missing(approvals)
    tail = (f"quorum met: runbook resume {again}" if left == 0 else
            f"{left} more approval{'s' if left != 1 else ''} needed before resuming")
    return (f"recorded: {who} approves gate {gate} of run {run} "
            f"({len(approvals)} of {quorum.require}){signed}\n{tail}")


def approver_name(as_name: str | None, store: RunStore) -> str:
    """Who decides. A team store knows: its connection's role, and `--as` for anyone else
    is refused (the database would record the role anyway)."""
    from .prepare import operator_name

    role = store.identity
    if role is None:
        return operator_name(as_name)
    if as_name and as_name != role:
        raise Refused(f"--as {as_name}: this store records decisions as the database role of "
                      f"your connection, {role}; {as_name} decides from their own connection "
                      "(leave --as out)")
    return role


def sign_vote(trust: RunTrust, vote: Vote, gate: str, key: str | None, quorum: Quorum) -> None:
    """Sign the vote with the approver's key and, under `signers`, check it as the run will:
    a decision that would not count is refused now, with the reason, and nothing is kept."""
    try:
        spec = approver_key(key, vote.approver, trust.signers) if trust.signers else key
        trust.sign(gate, vote, spec)
    except TrustError as error:
        raise Refused(f"cannot sign {vote.approver}'s decision: {error}") from None
    if not trust.verifies:
        return  # nothing to check against: `runbook verify --signers FILE` can, later
    try:
        check = trust.check(vote, gate)
    except TrustError as error:
        raise Refused(f"cannot check the signature: {error}") from None
    problem = check.reason if not check.verified else \
        None if quorum.self_approval else trust.operators_own(check)
    if problem is not None:
        raise Refused(f"not recorded: {problem}")
    vote.key = check.fingerprint


def gate_names(snapshot: bytes | None) -> set[str]:
    """The gates of the runbook as the run started it, reached or not (empty if unreadable)."""
    try:
        ast = parse_text(snapshot.decode("utf-8"), "runbook.snapshot") if snapshot else None
    except UnicodeDecodeError:
        return set()
    return {gate.name.name for gate in ast.of("gate")} if ast is not None else set()


def _now(clock: Clock) -> str:
    """The decision's time, as statements write it (UTC, milliseconds)."""
    return format_time(datetime.fromtimestamp(clock.time(), UTC))


