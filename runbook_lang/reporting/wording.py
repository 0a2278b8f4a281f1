"""The report's wording, shared by its text, Markdown and HTML forms: the verdict, the run's
facts, markers, step outcomes and one line per action."""

from __future__ import annotations

import json

from .report_model import Action, Marker, RunReport, Section, identity

STATUS_MARK = {"succeeded": "✓", "failed": "✗", "rolled_back": "↺", "skipped": "↷",
               "paused": "⏸", "interrupted": "■", "tolerated": "⚠",
               "rejected": "✗"}
TAIL_LINES = 5  # of a failed command's stderr, in text: the rest is in the log


# ---------------------------------------------------------------------- shared wording


def verdict(report: RunReport) -> str:
    """One line: how the run ended and whether its record holds."""
    f = report.finished
    status = f"{f.get('status')} (exit {f.get('exit_code')})" if f else \
        "unfinished (no run_finished record)"
    v = report.verification
    record = f"record intact ({v['records']} records)" if v["ok"] else \
        "record FAILED verification: " + "; ".join(v["problems"][:2])
    seal = f"sealed by {v['sealed']}" if v.get("sealed") else "head not signed"
    return f"{status} · {record} · {seal}"


def summary_rows(report: RunReport) -> list[tuple[str, str]]:
    """The run's facts, label and value."""
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
        # A pause or an interruption is where the run stopped, not a failure.
        label = {"paused": "Paused at", "interrupted": "Interrupted in",
                 "rejected": "Rejected at"}.get(str(f.get("status")), "Failed step")
        rows.append((label, f"{f['failed_step']}: {f.get('reason') or ''}".rstrip(": ")))
    for resume in report.resumes:
        rows.append(("Resumed", resumed_text(resume)))
    v = report.verification
    rows.append(("Verification", f"intact, {v['records']} records, head {v['head']}" if v["ok"]
                 else "FAILED: " + "; ".join(v["problems"][:3])))
    rows.append(("Sealed by", v.get("sealed") or "nobody (the head is not signed)"))
    return rows


def resumed_text(rec: dict) -> str:
    """Who resumed the run, where, when, how, and from what."""
    op = rec.get("operator") or {}
    text = (f"{rec.get('time')} by {op.get('user', '?')} on {op.get('host', '?')}: "
            f"{' '.join(rec.get('argv') or [])}")
    extras = []
    if rec.get("previous_status"):
        extras.append(f"after {rec['previous_status']}")
    if rec.get("allow_changed"):
        extras.append("runbook changed, allowed")
    if rec.get("torn"):
        extras.append(f"a torn last line of {rec['torn'].get('bytes')} bytes cut off")
    if rec.get("unsealed"):
        extras.append(f"unsealed records {rec['unsealed'].get('first')}–"
                      f"{rec['unsealed'].get('last')} taken over as found")
    return text + (f" ({'; '.join(extras)})" if extras else "")


def marker_text(marker: Marker) -> str:
    """A marker as one sentence."""
    rec = marker.record
    if marker.kind == "started":
        op = rec.get("operator") or {}
        return (f"▶ run started by {op.get('user', '?')} on {op.get('host', '?')}: "
                f"{' '.join(rec.get('argv') or [])}")
    if marker.kind == "resumed":
        return "▶ resumed " + resumed_text(rec).split(" ", 1)[1]
    if marker.kind == "paused":
        return (f"⏸ paused at {rec.get('failed_step')} (exit {rec.get('exit_code')}): "
                f"{rec.get('reason') or 'waiting for approval'}")
    if marker.kind == "interrupted":
        rollback = rec.get("during_rollback")
        if rollback is not None:
            return (f"■ interrupted during the rollback after {rollback.get('trigger', '?')} "
                    f"(exit {rec.get('exit_code')}): resume finishes the rollback "
                    "(the undo blocks not yet done), then finally")
        return (f"■ interrupted during {rec.get('failed_step') or 'the run'} "
                f"(exit {rec.get('exit_code')}): resume continues from there")
    if marker.kind == "rollback":
        steps = ", ".join(rec.get("steps") or []) or "nothing"
        began = "rollback resumed" if rec.get("resumed") else "rollback began"
        cause = "rejected" if rec.get("cause") == "rejected" else "failed"
        return f"↺ {began} after {rec.get('trigger')} {cause}: undoes {steps}"
    if marker.kind == "rollback_done":
        return f"↺ rollback finished: {rec.get('status')}"
    return (f"■ run finished: {rec.get('status')} (exit {rec.get('exit_code')})"
            + (f", failed step {rec['failed_step']}" if rec.get("failed_step") else ""))


def section_status(section: Section) -> str:
    """A section's outcome in words."""
    status = section.status
    if section.tolerated:
        status = "failed, tolerated (on_failure continue)"
    if section.duration_ms is not None:
        status += f" in {section.duration_ms} ms"
    if section.attempts > 1:
        status += f", {section.attempts} attempts"
    return status + (f" — {section.reason}" if section.reason else "")


def section_label(section: Section) -> str:
    """`build · Build 1.4.2`, `undo build`, `finally`."""
    if section.phase == "rollback":
        return f"undo {section.name}"
    if section.phase == "finally":
        return "finally"
    return f"{section.name} · {section.title}" if section.title else section.name


def clock(time: str) -> str:
    """The time of day of an RFC 3339 time (the date is in the markers)."""
    return time[11:23] if len(time) >= 23 else time


def action_head(action: Action) -> str:
    """One line saying what an action was (a command's text comes apart)."""
    rec = action.record
    kind = action.kind
    if kind == "http":
        result = rec.get("status") or rec.get("error")
        return (f"http {rec.get('method')} {rec.get('url')} → {result} in "
                f"{rec.get('duration_ms')} ms")
    if kind == "check":
        verdict_word = "passed" if rec.get("event") == "check_passed" else "FAILED"
        attempts = rec.get("attempts")
        extra = f", {rec['misses']} misses" if rec.get("misses") is not None else ""
        return (f"check {rec.get('title')!r} {verdict_word} after {attempts} "
                f"attempt{'s' if attempts != 1 else ''}{extra}")
    if kind == "note":
        return "note: " + str(rec.get("text", ""))
    if kind == "confirm":
        return (f"confirm {rec.get('text')!r}: answered {rec.get('answer')} by "
                f"{rec.get('approver') or '-'} via {rec.get('method') or '-'}")
    if kind == "variable":
        if rec.get("too_large"):
            return (f"set {rec.get('name')} (too large to record: "
                    f"{rec['too_large'].get('bytes')} bytes)")
        return f"set {rec.get('name')} = {json.dumps(rec.get('value'), ensure_ascii=False)}"
    if kind == "gate":
        return gate_text(rec)
    return kind


def gate_text(rec: dict) -> str:
    """A gate wait or decision: who, how, where, when, and how the identity is known."""
    event = rec["event"]
    if event == "gate_waiting":
        how = "at the terminal" if rec.get("method") == "terminal" else "for approval"
        return f"waiting {how}: {rec.get('reason') or ''}".rstrip(": ")
    if event == "gate_timed_out":
        return f"timed out: {rec.get('reason') or ''}".rstrip(": ")
    word = {"gate_approved": "approved", "gate_rejected": "rejected",
            "gate_refused": "vote not counted"}[event]
    when = rec.get("decided_at") or rec.get("time")
    text = (f"{word} by {rec.get('approver') or '-'} via {rec.get('method') or '-'} on "
            f"{rec.get('host') or '-'} at {when}, identity {identity(rec)}")
    if rec.get("reason"):
        text += f" — {rec['reason']}"
    if event == "gate_refused":
        text += f" — not counted: {rec.get('refusal')}"
    return text


def command_result(action: Action) -> str:
    """`exit 0 in 4 ms · log output/…`, or why there is no result."""
    done = action.finished
    if done is None:
        return "no result recorded (the run stopped while it ran)"
    result = f"exit {done.get('exit_code')} in {done.get('duration_ms')} ms"
    if done.get("timed_out"):
        result += " (timed out)"
    logs = output_logs(done)
    if logs:
        result += " · " + ", ".join(f"{stream} {log}" for stream, log in logs)
    elif done.get("stdout") is not None or done.get("stderr") is not None:
        result += " · no output"
    elif done.get("log"):
        result += f" · log {done['log']}"
    return result


def output_logs(done: dict) -> list[tuple[str, str]]:
    """(stream, log path) of each stream of a command that printed something."""
    logs = []
    for stream in ("stdout", "stderr"):
        info = done.get(stream) or {}
        if info.get("log") and info.get("bytes"):
            logs.append((stream, str(info["log"])))
    return logs


def failed_tail(action: Action) -> list[str]:
    """The last lines of a failed command's stderr (or stdout when stderr is empty)."""
    done = action.finished
    if not done or done.get("exit_code") == 0:
        return []
    for stream in ("stderr", "stdout"):
        tail = ((done.get(stream) or {}).get("tail") or "").rstrip("\n")
        if tail:
            return [f"{stream}: {line}" for line in tail.splitlines()[-TAIL_LINES:]]
    return []
