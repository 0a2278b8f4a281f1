"""The report's model: the transcript folded into what an auditor reads, in the order it
happened.

A run is a timeline of *sections* (one per step, check, gate, undo block or `finally`, as
each was started) and *markers* between them (the run started, paused, was interrupted,
resumed, began or finished a rollback, ended). Each section holds its *actions* in record
order with their times: commands, HTTP requests, checks, notes, confirmations, variables
set, gate waits and decisions. Built only from the records, so the report says exactly what
the record says.
"""

from __future__ import annotations

from ..dataclass import dataclass, field
from ..store.chain import VerifyResult

GATE_EVENTS = ("gate_waiting", "gate_approved", "gate_rejected", "gate_refused",
               "gate_timed_out")
DECIDED = ("gate_approved", "gate_rejected", "gate_refused")


@dataclass
class Action:
    """One thing a step did, at the time the record gives."""

    time: str
    kind: str  # command, http, check, note, confirm, variable, gate
    record: dict
    finished: dict | None = None  # a command's command_finished record


@dataclass
class Section:
    """One step (or undo block, or `finally`) as it ran, from its start to its end."""

    name: str
    title: str
    phase: str  # step, rollback, finally
    started: str
    status: str = "unfinished"
    reason: str = ""
    duration_ms: int | None = None
    attempts: int = 1
    tolerated: bool = False
    loop: object = None
    actions: list[Action] = field(default_factory=list)

    @property
    def is_gate(self) -> bool:
        """A gate's section holds its waits and decisions."""
        return any(a.kind == "gate" for a in self.actions)


@dataclass
class Marker:
    """Something that happened to the run between steps."""

    time: str
    kind: str  # started, resumed, paused, interrupted, rollback, rollback_done, finished
    record: dict


@dataclass
class RunReport:
    """Everything `show` prints, gathered from the records."""

    run_id: str = ""
    started: dict = field(default_factory=dict)
    finished: dict = field(default_factory=dict)
    resumes: list[dict] = field(default_factory=list)
    timeline: list[Section | Marker] = field(default_factory=list)
    verification: dict = field(default_factory=dict)

    @property
    def sections(self) -> list[Section]:
        """The sections alone, in order."""
        return [entry for entry in self.timeline if isinstance(entry, Section)]

    def steps(self) -> list[Section]:
        """The last section of each step and phase, in the order each first appeared: what
        became of every step."""
        last: dict[tuple[str, str], Section] = {}
        for section in self.sections:
            last.setdefault((section.name, section.phase), section)
            last[(section.name, section.phase)] = section
        return list(last.values())

    def approvals(self) -> list[dict]:
        """Every gate record, in order."""
        return [a.record for s in self.sections for a in s.actions if a.kind == "gate"]


def build_report(records: list[dict], verified: VerifyResult,
                 sealed: str | None = None) -> RunReport:
    """Fold the records into a report; `sealed` says who signed the head (as the seal says:
    `runbook verify --signers` checks it)."""
    report = RunReport()
    folder = _Folder(report)
    for rec in records:
        report.run_id = rec.get("run_id", report.run_id)
        folder.add(rec)
    report.verification = {"ok": verified.ok, "records": verified.records,
                           "head": verified.head, "sealed": sealed,
                           "problems": [f"line {p.line}: {p.reason}" for p in verified.problems]}
    return report


class _Folder:
    """Walks the records once, opening and closing sections."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.open: Section | None = None
        self.commands: list[Action] = []
        self.rolling_back: dict | None = None  # a rollback_started not yet finished

    def add(self, rec: dict) -> None:
        event = rec.get("event", "")
        time = rec.get("time", "")
        handler = getattr(self, f"on_{event}", None)
        if handler is not None:
            handler(rec)
            return
        kind = {"command_started": "command", "http_request": "http", "check_passed": "check",
                "check_failed": "check", "note": "note", "confirm_answered": "confirm",
                "variable_set": "variable"}.get(event)
        if event in GATE_EVENTS:
            kind = "gate"
        if kind is not None:
            action = Action(time, kind, rec)
            self.section_for(rec).actions.append(action)
            if kind == "command":
                self.commands.append(action)

    def section_for(self, rec: dict) -> Section:
        """The open section, or (for a record outside any) one opened for it."""
        name = rec.get("step") or rec.get("gate") or "?"
        if self.open is None or self.open.name != name:
            self.open = Section(name, "", rec.get("phase", "step"), rec.get("time", ""))
            self.report.timeline.append(self.open)
        return self.open

    def on_run_started(self, rec: dict) -> None:
        self.report.started = rec
        self.report.timeline.append(Marker(rec.get("time", ""), "started", rec))

    def on_run_resumed(self, rec: dict) -> None:
        self.cut_short("cut short: the run was killed")
        self.report.resumes.append(rec)
        self.report.timeline.append(Marker(rec.get("time", ""), "resumed", rec))

    def on_run_finished(self, rec: dict) -> None:
        status = rec.get("status")
        if status in ("paused", "interrupted"):
            self.cut_short(status)
        self.open = None
        self.report.finished = rec
        kind = status if status in ("paused", "interrupted") else "finished"
        if kind == "interrupted" and self.rolling_back is not None:
            # Stopped inside the undo blocks: a resume finishes the rollback, never goes on.
            rec = {**rec, "during_rollback": self.rolling_back}
        self.rolling_back = None
        self.report.timeline.append(Marker(rec.get("time", ""), kind, rec))

    def cut_short(self, status: str) -> None:
        """The open section ends without its step_finished: say how."""
        if self.open is not None and self.open.status == "unfinished":
            self.open.status = status
        self.open = None

    def on_rollback_started(self, rec: dict) -> None:
        self.open = None
        self.rolling_back = rec
        self.report.timeline.append(Marker(rec.get("time", ""), "rollback", rec))

    def on_rollback_finished(self, rec: dict) -> None:
        self.open = None
        self.rolling_back = None
        self.report.timeline.append(Marker(rec.get("time", ""), "rollback_done", rec))

    def on_step_started(self, rec: dict) -> None:
        name, phase = rec.get("step", "?"), rec.get("phase", "step")
        attempt = rec.get("attempt", 1) or 1
        current = self.open
        if current is not None and attempt > 1 and (current.name, current.phase) == (name,
                                                                                      phase):
            current.attempts = attempt  # a retry goes on in the same section
            return
        self.open = Section(name, rec.get("title", ""), phase, rec.get("time", ""),
                            loop=rec.get("loop"))
        self.report.timeline.append(self.open)

    def on_step_finished(self, rec: dict) -> None:
        section = self.section_for(rec)
        section.title = rec.get("title", section.title) or section.title
        section.status = rec.get("status", "") or section.status
        section.reason = rec.get("reason", "") or ""
        if section.status == "failed" and section.reason in ("gate rejected", "gate timed out"):
            section.status = "rejected"  # a gate's no is a decision, not a failure
        section.duration_ms = rec.get("duration_ms")
        section.attempts = max(section.attempts, rec.get("attempt", 1) or 1)
        section.tolerated = bool(rec.get("tolerated"))
        self.open = None

    def on_command_finished(self, rec: dict) -> None:
        for action in reversed(self.commands):
            if action.finished is None and action.record.get("step") == rec.get("step"):
                action.finished = rec
                return
        # A finished command without its start (never written): shown on its own.
        action = Action(rec.get("time", ""), "command", rec, rec)
        self.section_for(rec).actions.append(action)


def identity(rec: dict) -> str:
    """How an approver's identity is known: 'verified (key …)' by a signature the run
    checked against its signers file, 'verified (database role)' where a team store's
    database knew who decided, else 'asserted' (a name given on trust)."""
    if rec.get("identity") == "verified":
        if rec.get("key"):
            return f"verified (key {rec.get('key')})"
        return f"verified ({rec.get('verified_by') or 'unknown means'})"
    if rec.get("signature"):
        return "asserted, signed (runbook verify --signers FILE checks it)"
    return "asserted"
