"""Who may approve a gate, and when a gate has its quorum (LANGUAGE.md §6.3).

One set of rules for every way an approval arrives: `--approve` on the run line, the
terminal prompt, and `runbook approve` from another shell (which reads the rules from the
`gate_waiting` record, since the run is not running then).
"""

from __future__ import annotations

from collections.abc import Collection

from ..dataclass import dataclass


@dataclass(frozen=True)
class Refusal:
    """Why one person's decision does not count."""

    kind: str  # not_approver, self_approval, repeated
    who: str
    gate: str
    approvers: tuple[str, ...] = ()

    def message(self, run_id: str | None = None) -> str:
        """One line; `run_id` when the decision comes from outside the run."""
        who = repr(self.who)
        if self.kind == "not_approver":
            verb = "may not approve gate" if run_id else "is not an approver of gate"
            return f"{who} {verb} {self.gate} (approvers: {', '.join(self.approvers)})"
        if self.kind == "self_approval":
            run = f"run {run_id}" if run_id else "this run"
            return f"{who} started {run} and gate {self.gate} has self_approval false"
        if run_id:
            return f"{who} has already decided on gate {self.gate} of run {run_id}"
        return f"{who} has already approved gate {self.gate}"


@dataclass(frozen=True)
class Quorum:
    """A gate's approval rules: who may approve, how many must, and whether the operator
    who started the run counts."""

    gate: str
    approvers: tuple[str, ...] | None
    require: int
    self_approval: bool

    def refusal(self, who: str, operator: str | None, decided: Collection[str]) -> Refusal | None:
        """Why `who`'s decision does not count (None when it does). `decided` holds the
        names that have already decided at this gate; `operator` started the run."""
        if self.approvers is not None and who not in self.approvers:
            return Refusal("not_approver", who, self.gate, self.approvers)
        if not self.self_approval and who == operator:
            return Refusal("self_approval", who, self.gate)
        if who in decided:
            return Refusal("repeated", who, self.gate)
        return None

    def met(self, approved: Collection[str]) -> bool:
        """Whether these distinct approvals reach the quorum."""
        return len(set(approved)) >= self.require

    def missing(self, approved: Collection[str]) -> int:
        """How many approvals are still needed."""
        return max(0, self.require - len(set(approved)))

    def describe(self, timeout: object | None = None) -> str:
        """`needs 2 approvals from alice, bob, carol, times out after 30m, not the operator`."""
        who = ", ".join(self.approvers) if self.approvers is not None else "anyone"
        text = f"needs {self.require} approval{'s' if self.require != 1 else ''} from {who}"
        if timeout is not None:
            text += f", times out after {timeout}"
        if not self.self_approval:
            text += ", not the operator"
        return text

    @classmethod
    def from_waiting(cls, record: dict) -> Quorum:
        """The rules a `gate_waiting` record carries."""
        approvers = record.get("approvers")
        return cls(record["gate"], tuple(approvers) if approvers is not None else None,
                   record.get("require", 1), record.get("self_approval", True) is not False)
