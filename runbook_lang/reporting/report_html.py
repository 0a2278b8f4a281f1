"""`runbook show --format html`: the report as one self-contained page.

Inline CSS, no script, no external asset: the page reads the same offline, in a mail, or
printed. Multi-line commands and output tails fold into `<details>` (open for short
scripts, and always open on paper); links to the output logs are relative to the run
directory, where `output/` lives.
"""

from __future__ import annotations

import html
import json

from .report_model import DECIDED, Action, Marker, RunReport, Section, identity
from .wording import (
    STATUS_MARK,
    action_head,
    clock,
    command_result,
    marker_text,
    output_logs,
    section_label,
    section_status,
    summary_rows,
    verdict,
)

OPEN_UP_TO = 12  # lines: a longer script starts folded (its first line shows)

CSS = """body{font:14px/1.5 system-ui,sans-serif;max-width:64em;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #ccc;
padding:.3em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3;font-weight:600}
code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f6f6f6;padding:.4em .6em;
margin:.2em 0;white-space:pre-wrap;overflow-wrap:anywhere}.verdict{font-size:1.2em;
font-weight:600;padding:.4em .6em;border-left:6px solid #999;background:#fafafa}
.succeeded{color:#176f2c}.failed,.rollback_failed,.rejected,.interrupted{color:#b00020}
.rolled_back,.skipped,.paused,.tolerated{color:#8a6d00}.verdict.succeeded{border-color:#176f2c}
.verdict.failed,.verdict.rollback_failed,.verdict.rejected,.verdict.interrupted{
border-color:#b00020}.verdict.rolled_back,.verdict.paused{border-color:#8a6d00}
.marker{margin:1em 0 .3em;padding:.3em .6em;background:#eef2f7;border-left:4px solid #4a6fa5}
section{margin:.6em 0;padding-left:.6em;border-left:2px solid #ddd}
section h3{font-size:1em;margin:.2em 0}ol{list-style:none;padding-left:0;margin:.2em 0}
li{margin:.15em 0}time{color:#555;font-family:ui-monospace,monospace;font-size:12px;
margin-right:.6em}summary{cursor:pointer}.expect{margin-left:1.5em}
@media print{body{margin:0;max-width:none;font-size:11px}a{color:inherit}
details::details-content{content-visibility:visible;display:block}
section,.marker{break-inside:avoid}}"""


def render_html(report: RunReport) -> str:
    """One self-contained page (no external assets) that prints well."""
    e = html.escape
    title = report.started.get("title") or report.run_id
    status = report.finished.get("status", "unfinished")
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>Run report: {e(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>Run report: {e(title)}</h1>",
           f"<p class='verdict {e(status)}'>Verdict: {e(verdict(report))}</p>",
           "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>"
                               for k, v in summary_rows(report)) + "</table>"]
    params = report.started.get("params") or {}
    if params:
        out.append("<h2>Params</h2><table>" + "".join(
            f"<tr><th>{e(k)}</th><td><code>{e(json.dumps(v, ensure_ascii=False))}</code>"
            "</td></tr>" for k, v in params.items()) + "</table>")
    out.append("<h2>Steps</h2><table><tr><th>step</th><th>title</th><th>status</th></tr>")
    for s in report.steps():
        css = "tolerated" if s.tolerated else s.status
        phase = f" ({e(s.phase)})" if s.phase not in ("step", s.name) else ""
        out.append(f"<tr><td><code>{e(s.name)}</code>{phase}</td><td>{e(s.title)}</td>"
                   f"<td class='{e(css)}'>"
                   f"{e(STATUS_MARK.get(css, '•'))} {e(section_status(s))}</td></tr>")
    out.append("</table>")
    approvals = report.approvals()
    if approvals:
        out.append("<h2>Approvals</h2><table><tr><th>time</th><th>gate</th><th>event</th>"
                   "<th>approver</th><th>method</th><th>host</th><th>identity</th>"
                   "<th>reason</th></tr>")
        for r in approvals:
            decided = r["event"] in DECIDED
            reason = str(r.get("reason") or "")
            if r.get("refusal"):
                reason += f" — not counted: {r['refusal']}"
            out.append(f"<tr><td>{e(str(r.get('decided_at') or r.get('time')))}</td>"
                       f"<td><code>{e(str(r.get('gate')))}</code></td>"
                       f"<td>{e(r['event'].replace('gate_', ''))}</td>"
                       f"<td>{e(str(r.get('approver') or '-'))}</td>"
                       f"<td>{e(str(r.get('method') or '-'))}</td>"
                       f"<td>{e(str(r.get('host') or '-'))}</td>"
                       f"<td>{e(identity(r)) if decided else ''}</td><td>{e(reason)}</td></tr>")
        out.append("</table>")
    out.append("<h2>Timeline</h2><p>Each step's actions in the order they happened (times in "
               "UTC). Output logs are linked relative to the run directory.</p>")
    for entry in report.timeline:
        if isinstance(entry, Marker):
            out.append(f"<p class='marker'><time>{e(entry.time)}</time>"
                       f"{e(marker_text(entry))}</p>")
            continue
        out.append(_section(entry))
    out.append("</body></html>\n")
    return "".join(out)


def _section(section: Section) -> str:
    e = html.escape
    css = "tolerated" if section.tolerated else section.status
    items = []
    for action in section.actions:
        when = f"<time>{e(clock(action.time))}</time>"
        if action.kind == "command":
            items.append(f"<li>{when}{_command(action)}</li>")
            continue
        text = e(action_head(action))
        if "\n" in text:
            text = f"<pre>{text}</pre>"
        if action.kind == "check":
            text += "".join(
                f"<div class='expect'>{'ok' if x.get('ok') else 'FAILED'}: "
                f"<code>{e(str(x.get('expr')))}</code> (actual {e(str(x.get('actual')))})</div>"
                for x in action.record.get("expectations") or [])
        items.append(f"<li>{when}{text}</li>")
    return (f"<section><h3><span class='{e(css)}'>{e(STATUS_MARK.get(css, '•'))}</span> "
            f"{e(section_label(section))}: "
            f"<span class='{e(css)}'>{e(section_status(section))}</span></h3>"
            f"<ol>{''.join(items)}</ol></section>")


def _command(action: Action) -> str:
    e = html.escape
    command = str(action.record.get("command") or "").rstrip("\n")
    lines = command.split("\n")
    done = action.finished or {}
    outcome = e(command_result(action))
    for _stream, log in output_logs(done):
        outcome = outcome.replace(e(log), f"<a href='{e(log)}'>{e(log)}</a>")
    if len(lines) == 1:
        shown = f"run <code>{e(command)}</code> → {outcome}"
    else:
        state = " open" if len(lines) <= OPEN_UP_TO else ""
        shown = (f"<details{state}><summary>run <code>{e(lines[0])}</code> … "
                 f"({len(lines)} lines) → {outcome}</summary><pre>{e(command)}</pre></details>")
    for stream in ("stdout", "stderr"):
        info = done.get(stream) or {}
        tail = (info.get("tail") or "").rstrip("\n")
        if tail:
            link = info.get("log")
            where = f" (<a href='{e(link)}'>{e(link)}</a>)" if link else ""
            failed = stream == "stderr" and done.get("exit_code") != 0
            shown += (f"<details{' open' if failed else ''}><summary>{stream}: last lines "
                      f"of {info.get('bytes')} bytes"
                      f"{where}</summary><pre>{e(tail)}</pre></details>")
    return shown
