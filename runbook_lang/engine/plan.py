"""The plan: what a run would do, step by step, as the interpreter walks it in dry-run mode.

The dry-run is the interpreter itself with effects replaced by entries here, so the plan
and the run cannot drift apart. `to_json` is the document `--output json` prints (schema in
docs/plan.md); `reporting/plan_text.py` renders it for people.
"""

from __future__ import annotations

from ..dataclass import dataclass, field

PLAN_VERSION = 2


@dataclass
class PlanStep:
    """One step, check, gate or rollback/finally block in the plan."""

    number: str
    name: str
    kind: str
    title: str
    status: str = "will run"  # will run, skipped, decided at run time, fails (--fail-at)
    reason: str = ""
    attributes: dict = field(default_factory=dict)
    actions: list[dict] = field(default_factory=list)
    on_failure: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"number": self.number, "name": self.name, "kind": self.kind,
                "title": self.title, "status": self.status, "reason": self.reason or None,
                "attributes": self.attributes, "actions": self.actions,
                "on_failure": self.on_failure or None}


@dataclass
class Plan:
    """Collects the plan while the interpreter walks the runbook in dry-run mode."""

    runbook: str
    title: str
    params: dict
    operator: dict
    secrets: list[dict] = field(default_factory=list)
    steps: list[PlanStep] = field(default_factory=list)
    rollback: list[PlanStep] = field(default_factory=list)
    final: PlanStep | None = None
    outcome: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    legend: dict[str, str] = field(default_factory=dict)
    # The params as JSON values (numbers, booleans and lists stay typed), for `--output json`;
    # `params` holds them as the text plan shows them.
    param_values: dict = field(default_factory=dict)
    current: PlanStep | None = None
    mask: object = None  # the run's masker function, set by the dry-run

    def start(self, step: PlanStep, section: str = "steps") -> PlanStep:
        """Begin a plan entry; actions go to it until the next one starts."""
        if callable(self.mask):
            step.name, step.title = self.mask(step.name), self.mask(step.title)
        getattr(self, section).append(step) if section != "final" else None
        if section == "final":
            self.final = step
        self.current = step
        return step

    def action(self, frame, kind: str, **details) -> None:
        """Record one thing the current step would do (called by the statement executor)."""
        if self.current is None:
            return
        entry = {"kind": kind, "depth": frame.depth}
        entry.update({k: v for k, v in details.items() if v is not None})
        self.current.actions.append(entry)

    def to_json(self) -> dict:
        return {
            "plan_version": PLAN_VERSION,
            "mode": "dry-run",
            "runbook": self.runbook,
            "title": self.title,
            "params": self.param_values or self.params,
            "secrets": self.secrets,
            "operator": self.operator,
            "steps": [s.to_json() for s in self.steps],
            "rollback": [s.to_json() for s in self.rollback],
            "finally": self.final.to_json() if self.final else None,
            "outcome": self.outcome,
            "notes": self.notes,
            "legend": self.legend,
        }
