"""`runbook show`: the audit report of a run, as text, Markdown, HTML or JSON.

Built only from the transcript (and its verification), so the report says exactly what the
record says: who ran what, where and when, with which params, approvals and results. The
verdict comes first; then the run's facts, every step's outcome, and the timeline: each
step's actions in the order they happened, with the markers where the run paused, was
interrupted, resumed or rolled back.
"""

from __future__ import annotations

import json

from ..dataclass import asdict
from .report_html import render_html
from .report_model import Action, Marker, RunReport, Section, build_report, identity
from .wording import (
    STATUS_MARK,
    action_head,
    clock,
    command_result,
    failed_tail,
    marker_text,
    section_label,
    section_status,
    summary_rows,
    verdict,
)

__all__ = ["build_report", "identity", "render_html", "render_json", "render_text"]

# ---------------------------------------------------------------------- text and markdown


def render_text(report: RunReport, markdown: bool = False) -> str:
    """The report for a terminal (or, with `markdown`, for a pull request or a wiki)."""
    return (_Markdown(report) if markdown else _Text(report)).render()


class _Text:
    """The plain-text report: aligned columns, indented blocks."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.out: list[str] = []

    def render(self) -> str:
        r = self.report
        self.heading(1, f"Run report: {r.started.get('title') or r.run_id}")
        self.out += [f"Verdict: {verdict(r)}", ""]
        self.facts(summary_rows(r))
        params = r.started.get("params") or {}
        if params:
            self.heading(2, "Params")
            self.out += [f"- {k} = {json.dumps(v, ensure_ascii=False)}"
                         for k, v in params.items()]
        self.heading(2, "Steps")
        self.steps()
        self.heading(2, "Timeline")
        for entry in r.timeline:
            if isinstance(entry, Marker):
                self.marker(entry)
            else:
                self.section(entry)
        return "\n".join(self.out).rstrip("\n") + "\n"

    def heading(self, level: int, text: str) -> None:
        if level > 1 and self.out and self.out[-1] != "":
            self.out.append("")
        self.out += [text, ""] if level == 1 else [text]

    def facts(self, rows: list[tuple[str, str]]) -> None:
        width = max(len(k) for k, _ in rows)
        self.out += [f"{k.ljust(width)}  {v}" for k, v in rows]

    def steps(self) -> None:
        rows = [(section_label(s), STATUS_MARK.get("tolerated" if s.tolerated else s.status,
                                                   "•"), section_status(s))
                for s in self.report.steps()]
        width = max((len(label) for label, _, _ in rows), default=0)
        self.out += [f"  {mark} {label.ljust(width)}  {status}" for label, mark, status in rows]

    def marker(self, marker: Marker) -> None:
        self.out += ["", f"{marker.time}  {marker_text(marker)}"]

    def section(self, section: Section) -> None:
        mark = STATUS_MARK.get("tolerated" if section.tolerated else section.status, "•")
        self.out += ["", f"{mark} {section_label(section)}: {section_status(section)}"]
        for action in section.actions:
            self.action(action)

    def action(self, action: Action) -> None:
        pad = " " * 16
        if action.kind != "command":
            head = action_head(action)
            lines = head.split("\n")
            self.out.append(f"  {clock(action.time)}  {lines[0]}")
            self.out += [pad + line for line in lines[1:]]
            if action.kind == "check":
                for exp in action.record.get("expectations") or []:
                    mark = "ok" if exp.get("ok") else "FAILED"
                    self.out.append(f"{pad}{mark}: {exp.get('expr')} (actual: "
                                    f"{exp.get('actual')})")
            return
        command = str(action.record.get("command") or "").rstrip("\n")
        lines = command.split("\n")
        if len(lines) == 1:
            self.out.append(f"  {clock(action.time)}  run {lines[0]}")
        else:
            self.out.append(f"  {clock(action.time)}  run ({len(lines)} lines):")
            self.out += [f"{pad}  | {line}".rstrip() for line in lines]
        self.out.append(f"{pad}→ {command_result(action)}")
        self.out += [f"{pad}  {line}" for line in failed_tail(action)]


class _Markdown(_Text):
    """The report in Markdown: a table of facts, a list per step, fenced commands."""

    def blank(self) -> None:
        if self.out and self.out[-1] != "":
            self.out.append("")

    def heading(self, level: int, text: str) -> None:
        if self.out and self.out[-1] != "":
            self.out.append("")
        self.out += ["#" * level + " " + text, ""]

    def facts(self, rows: list[tuple[str, str]]) -> None:
        self.out += ["| | |", "|---|---|"] + [f"| {k} | {_md(v)} |" for k, v in rows]

    def steps(self) -> None:
        self.out += ["| step | status |", "|---|---|"]
        self.out += [f"| {_md(section_label(s))} | {_md(section_status(s))} |"
                     for s in self.report.steps()]

    def marker(self, marker: Marker) -> None:
        self.blank()
        self.out += [f"**{_md(marker_text(marker))}** — {marker.time}"]

    def section(self, section: Section) -> None:
        mark = STATUS_MARK.get("tolerated" if section.tolerated else section.status, "•")
        self.blank()
        self.out += [f"### {mark} {_md(section_label(section))}", "",
                     f"Status: {_md(section_status(section))}", ""]
        for action in section.actions:
            self.action(action)

    def action(self, action: Action) -> None:
        when = f"`{clock(action.time)}`"
        if action.kind != "command":
            head = action_head(action).replace("\n", "\n  ")
            self.out.append(f"- {when} {_md(head)}")
            if action.kind == "check":
                for exp in action.record.get("expectations") or []:
                    mark = "ok" if exp.get("ok") else "FAILED"
                    self.out.append(f"  - {mark}: `{exp.get('expr')}` (actual: "
                                    f"{_md(str(exp.get('actual')))})")
            return
        command = str(action.record.get("command") or "").rstrip("\n")
        fence = "```" if "```" not in command else "~~~~"
        self.out.append(f"- {when} run → {_md(command_result(action))}")
        self.out += [f"  {fence}sh"] + [f"  {line}".rstrip() for line in command.split("\n")]
        self.out.append(f"  {fence}")
        for line in failed_tail(action):
            self.out.append(f"  - {_md(line)}")


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def render_json(report: RunReport) -> str:
    """The report as one JSON document: the facts, the verdict and the timeline."""
    doc = {"report_version": 2, "run_id": report.run_id, "verdict": verdict(report),
           "started": report.started, "finished": report.finished, "resumes": report.resumes,
           "verification": report.verification,
           "steps": [_section_json(s) for s in report.steps()],
           "timeline": [{"marker": e.kind, "time": e.time, "text": marker_text(e)}
                        if isinstance(e, Marker) else {"section": _section_json(e)}
                        for e in report.timeline]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _section_json(section: Section) -> dict:
    data = asdict(section)
    data["actions"] = [{"time": a.time, "kind": a.kind, "record": a.record,
                        "finished": a.finished} for a in section.actions]
    return data

