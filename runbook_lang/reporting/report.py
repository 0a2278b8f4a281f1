"""`runbook show`: the audit report of a run, as text, Markdown, HTML or JSON.

Built only from the transcript (and its verification), so the report says exactly what the
record says: who ran what, where and when, with which params, approvals and results.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from ..store.chain import VerifyResult


@dataclass
class StepReport:
    """One step as the transcript tells it."""

    name: str
    title: str = ""
    status: str = "started"
    reason: str = ""
    duration_ms: int = 0
    attempts: int = 0
    phase: str = "step"
    commands: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    http: list[dict] = field(default_factory=list)


@dataclass
class RunReport:
    """Everything `show` prints, gathered from the records."""

    run_id: str = ""
    started: dict = field(default_factory=dict)
    finished: dict = field(default_factory=dict)
    resumes: list[dict] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)
    approvals: list[dict] = field(default_factory=list)
    confirms: list[dict] = field(default_factory=list)
    rollbacks: list[dict] = field(default_factory=list)
    variables: list[dict] = field(default_factory=list)
    verification: dict = field(default_factory=dict)


def build_report(records: list[dict], verified: VerifyResult,
                 sealed: str | None = None) -> RunReport:
    """Fold the records into a report; `sealed` says who signed the head (as the seal says:
    `runbook verify --signers` checks it)."""
    report = RunReport()
    by_key: dict[tuple[str, str], StepReport] = {}
    for rec in records:
        event = rec.get("event")
        report.run_id = rec.get("run_id", report.run_id)
        if event == "run_started":
            report.started = rec
        elif event == "run_finished":
            report.finished = rec
        elif event == "run_resumed":
            report.resumes.append(rec)
        elif event in ("step_started", "step_finished"):
            key = (rec.get("step", "?"), rec.get("phase", "step"))
            step = by_key.get(key)
            if step is None or (event == "step_started" and step.status not in ("started",)
                                and rec.get("attempt", 1) == 1 and key[1] == "step"):
                step = StepReport(key[0], phase=key[1])
                by_key[key] = step
                report.steps.append(step)
            step.title = rec.get("title", step.title)
            step.attempts = max(step.attempts, rec.get("attempt", 1))
            if event == "step_finished":
                step.status = rec.get("status", "")
                step.reason = rec.get("reason", "") or ""
                step.duration_ms = rec.get("duration_ms", 0)
        elif event == "command_finished":
            _current(by_key, rec).commands.append(rec)
        elif event == "http_request":
            _current(by_key, rec).http.append(rec)
        elif event in ("check_passed", "check_failed"):
            _current(by_key, rec).checks.append(rec)
        elif event == "note":
            _current(by_key, rec).notes.append(rec.get("text", ""))
        elif event in ("gate_waiting", "gate_approved", "gate_rejected", "gate_refused",
                       "gate_timed_out"):
            report.approvals.append(rec)
        elif event == "confirm_answered":
            report.confirms.append(rec)
        elif event in ("rollback_started", "rollback_finished"):
            report.rollbacks.append(rec)
        elif event == "variable_set":
            report.variables.append(rec)
    report.verification = {"ok": verified.ok, "records": verified.records,
                           "head": verified.head, "sealed": sealed,
                           "problems": [f"line {p.line}: {p.reason}" for p in verified.problems]}
    return report


DECIDED = ("gate_approved", "gate_rejected", "gate_refused")


def identity(rec: dict) -> str:
    """How an approver's identity is known: 'verified (key …)' by a signature the run
    checked against its signers file, else 'asserted' (a name given on trust)."""
    if rec.get("identity") == "verified":
        if rec.get("key"):
            return f"verified (key {rec.get('key')})"
        return f"verified ({rec.get('verified_by') or 'unknown means'})"
    if rec.get("signature"):
        return "asserted, signed (runbook verify --signers FILE checks it)"
    return "asserted"


def _current(by_key: dict, rec: dict) -> StepReport:
    key = (rec.get("step", "?"), rec.get("phase", "step"))
    step = by_key.get(key)
    if step is None:
        step = StepReport(key[0], phase=key[1])
        by_key[key] = step
    return step


# ---------------------------------------------------------------------- text and markdown


def _summary_rows(report: RunReport) -> list[tuple[str, str]]:
    s, f = report.started, report.finished
    operator = s.get("operator") or {}
    rows = [
        ("Run", report.run_id),
        ("Runbook", f"{s.get('runbook', '?')} ({s.get('title', '')})"),
        ("Runbook SHA-256", s.get("sha256", "?")),
        ("Operator", f"{operator.get('user', '?')} on {operator.get('host', '?')}"),
        ("Started", s.get("time", "?")),
        ("Finished", f.get("time", "not finished")),
        ("Status", f"{f.get('status', 'unfinished')} (exit {f.get('exit_code', '-')})"
         if f else "unfinished (no run_finished record)"),
        ("Tool", f"runbook {s.get('version', '?')}, mode {s.get('mode', '?')}"),
        ("Command", " ".join(s.get("argv") or [])),
    ]
    if f.get("failed_step"):
        rows.append(("Failed step", f"{f['failed_step']}: {f.get('reason') or ''}".rstrip(": ")))
    for resume in report.resumes:
        op = resume.get("operator") or {}
        rows.append(("Resumed", f"{resume.get('time')} by {op.get('user', '?')}"
                     + (" (runbook changed, allowed)" if resume.get("allow_changed") else "")))
    v = report.verification
    rows.append(("Verification", f"intact, {v['records']} records, head {v['head']}" if v["ok"]
                 else "FAILED: " + "; ".join(v["problems"][:3])))
    rows.append(("Sealed by", v.get("sealed") or "nobody (the head is not signed)"))
    return rows


def render_text(report: RunReport, markdown: bool = False) -> str:
    """The report for a terminal (or, with `markdown`, for a pull request or a wiki)."""
    out: list[str] = []
    h1, h2 = ("# ", "## ") if markdown else ("", "")
    out.append(f"{h1}Run report: {report.started.get('title') or report.run_id}")
    out.append("")
    rows = _summary_rows(report)
    if markdown:
        out += ["| | |", "|---|---|"] + [f"| {k} | {_md(v)} |" for k, v in rows]
    else:
        width = max(len(k) for k, _ in rows)
        out += [f"{k.ljust(width)}  {v}" for k, v in rows]
    params = report.started.get("params") or {}
    if params:
        out += ["", f"{h2}Params"]
        out += [f"- {k} = {json.dumps(v, ensure_ascii=False)}" for k, v in params.items()]
    out += ["", f"{h2}Steps"]
    for step in report.steps:
        label = f"{step.name} ({step.phase})" if step.phase != "step" else step.name
        line = f"- {label}: {step.status} in {step.duration_ms} ms"
        if step.attempts > 1:
            line += f", {step.attempts} attempts"
        if step.reason:
            line += f" — {step.reason}"
        out.append(line)
        for command in step.commands:
            first = (command.get("command") or "").strip().splitlines()
            shown = first[0] if first else ""
            out.append(f"    - `{shown}` exit {command.get('exit_code')} in "
                       f"{command.get('duration_ms')} ms (log {command.get('log')})")
        for request in step.http:
            out.append(f"    - {request.get('method')} {request.get('url')} → "
                       f"{request.get('status') or request.get('error')}")
        for check in step.checks:
            verdict = "passed" if check.get("event") == "check_passed" else "failed"
            out.append(f"    - check {check.get('title')!r} {verdict} after "
                       f"{check.get('attempts')} attempt(s)")
            for exp in check.get("expectations") or []:
                mark = "ok" if exp.get("ok") else "FAILED"
                out.append(f"        {mark}: {exp.get('expr')} (actual: {exp.get('actual')})")
        for note in step.notes:
            # Continuation lines stay inside the list item (in Markdown too: under 10 columns).
            out.append("    - note: " + note.rstrip("\n").replace("\n", "\n" + " " * 8))
    if report.approvals or report.confirms:
        out += ["", f"{h2}Approvals"]
        for rec in report.approvals:
            decided = rec["event"] in DECIDED
            out.append(f"- {rec.get('time')} {rec['event'].replace('gate_', '')}: gate "
                       f"{rec.get('gate')} by {rec.get('approver') or '-'} via "
                       f"{rec.get('method') or '-'} on {rec.get('host') or '-'}"
                       + (f", {identity(rec)}" if decided else "")
                       + (f" — {rec.get('reason')}" if rec.get("reason") else "")
                       + (f" — not counted: {rec.get('refusal')}"
                          if rec["event"] == "gate_refused" else ""))
        for rec in report.confirms:
            out.append(f"- {rec.get('time')} confirm in {rec.get('step')}: {rec.get('text')!r} "
                       f"answered {rec.get('answer')} by {rec.get('approver') or '-'}")
    if report.rollbacks:
        out += ["", f"{h2}Rollback"]
        for rec in report.rollbacks:
            if rec["event"] == "rollback_started":
                out.append(f"- after {rec.get('trigger')}: undo "
                           + (", ".join(rec.get("steps") or []) or "nothing"))
            else:
                out.append(f"- finished: {rec.get('status')}")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


# ---------------------------------------------------------------------- html


CSS = """body{font:14px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}code{font-size:90%}
.succeeded{color:#176f2c}.failed,.rollback_failed,.rejected{color:#b00020}
.rolled_back,.skipped{color:#8a6d00}@media print{body{margin:0;max-width:none}
a{color:inherit}}"""


def render_html(report: RunReport) -> str:
    """One self-contained page (no external assets) that prints well."""
    e = html.escape
    title = report.started.get("title") or report.run_id
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>"
                   for k, v in _summary_rows(report))
    params = "".join(f"<tr><th>{e(k)}</th><td><code>{e(json.dumps(v))}</code></td></tr>"
                     for k, v in (report.started.get("params") or {}).items())
    steps = []
    for step in report.steps:
        detail = "".join(
            f"<li><code>{e((c.get('command') or '').strip())}</code> exit "
            f"{e(str(c.get('exit_code')))} in {c.get('duration_ms')} ms</li>"
            for c in step.commands)
        detail += "".join(
            f"<li>check {e(str(c.get('title')))}: "
            f"{'passed' if c.get('event') == 'check_passed' else 'failed'}"
            + "".join(f"<br>{'ok' if x.get('ok') else 'FAILED'}: <code>{e(str(x.get('expr')))}"
                      f"</code> (actual {e(str(x.get('actual')))})"
                      for x in c.get("expectations") or []) + "</li>" for c in step.checks)
        detail += "".join(f"<li>note: {e(n)}</li>" for n in step.notes)
        steps.append(f"<tr><td>{e(step.name)}</td><td>{e(step.phase)}</td>"
                     f"<td class='{e(step.status)}'>{e(step.status)}</td>"
                     f"<td>{step.duration_ms} ms</td><td>{e(step.reason)}"
                     f"<ul>{detail}</ul></td></tr>")
    approvals = "".join(
        f"<tr><td>{e(str(r.get('time')))}</td><td>{e(r['event'])}</td>"
        f"<td>{e(str(r.get('gate')))}</td><td>{e(str(r.get('approver') or '-'))}</td>"
        f"<td>{e(str(r.get('method') or '-'))}</td>"
        f"<td>{e(identity(r)) if r['event'] in DECIDED else ''}</td>"
        f"<td>{e(str(r.get('reason') or ''))}"
        f"{e(' — not counted: ' + str(r.get('refusal'))) if r.get('refusal') else ''}</td></tr>"
        for r in report.approvals)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Run report: {e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>Run report: {e(title)}</h1><table>{rows}</table>"
        + (f"<h2>Params</h2><table>{params}</table>" if params else "")
        + "<h2>Steps</h2><table><tr><th>step</th><th>phase</th><th>status</th>"
        f"<th>duration</th><th>details</th></tr>{''.join(steps)}</table>"
        + ("<h2>Approvals</h2><table><tr><th>time</th><th>event</th><th>gate</th>"
           f"<th>approver</th><th>method</th><th>identity</th><th>reason</th></tr>"
           f"{approvals}</table>"
           if approvals else "")
        + "</body></html>\n")


def render_json(report: RunReport) -> str:
    """The report as one JSON document."""
    from dataclasses import asdict

    return json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n"
