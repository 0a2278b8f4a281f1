"""The plan's summary: one screen an approver reads before saying yes.

What the run will change (one line a step), the gates with their approvers and quorum,
what is only known at run time (the legend of the `<name>` placeholders), the rollback plan
and the expected outcome. The detail follows it (`plan_text.py`).
"""

from __future__ import annotations

import textwrap

from ..engine.plan import Plan, PlanStep

WIDTH = 100


def render_summary(plan: Plan) -> list[str]:
    """The summary's lines (the header is the caller's)."""
    lines = ["Summary", "", "Steps (what the run will do, in order):"]
    lines += [step_line(step) for step in plan.steps]
    gates = [step for step in plan.steps if step.kind == "gate"]
    if gates:
        lines += ["", "Gates:"]
        for gate in gates:
            approval = gate.attributes.get("approval", "an approval")
            state = _state(gate)
            lines.append(f"  {gate.name}: {approval}" + (f"  [{state}]" if state else ""))
    if plan.legend:
        lines += ["", "Known only at run time (shown as <name> in the plan):"]
        width = max(len(name) + 2 for name in plan.legend)
        lines += [f"  {('<' + name + '>').ljust(width)}  {origin}"
                  for name, origin in plan.legend.items()]
    lines += ["", "Rollback plan (if a step fails):"]
    lines += rollback_lines(plan)
    if plan.outcome:
        lines += [""] + outcome_lines(plan)
    return lines


def step_line(step: PlanStep) -> str:
    """`  3. step  backup  Back up the data — 2 commands · fs.backup`."""
    effects = _effects(step) if step.kind != "gate" else ""
    state = _state(step)
    text = f"  {(step.number + '.').rjust(3)} {step.kind:<5} {step.name}: {step.title}"
    if effects:
        text += f" — {effects}"
    if state:
        text += f"  [{state}]"
    return text


def _state(step: PlanStep) -> str:
    if step.status == "will run":
        return ""
    return step.status + (f": {step.reason}" if step.reason else "")


def _effects(step: PlanStep) -> str:
    """What a step does, counted: commands, requests, checks; the imported tasks it calls."""
    counts = {"run": 0, "http": 0, "check": 0, "watch": 0, "confirm": 0, "wait": 0}
    tasks: list[str] = []
    for action in step.actions:
        kind = action["kind"]
        if kind in counts:
            counts[kind] += 1
        elif kind == "task" and action.get("module"):
            name = action["call"].split("(", 1)[0]
            if name not in tasks:
                tasks.append(name)
    words = {"run": ("command", "commands"), "http": ("HTTP request", "HTTP requests"),
             "check": ("check", "checks"), "watch": ("watch", "watches"),
             "confirm": ("confirm", "confirms"), "wait": ("wait", "waits")}
    parts = [f"{n} {words[k][n != 1]}" for k, n in counts.items() if n]
    text = ", ".join(parts)
    if tasks:
        text += (" · " if text else "") + ", ".join(tasks)
    return text


def rollback_lines(plan: Plan) -> list[str]:
    """Each step's failure policy, steps that share one grouped; then the undo blocks."""
    groups: dict[str, list[str]] = {}
    undo_blocks: list[str] = []
    for step in plan.steps:
        if step.kind == "gate" or not step.on_failure:
            continue
        groups.setdefault(policy_text(step.on_failure), []).append(step.name)
        undo = step.on_failure.get("undo") or []
        if step.name in undo:
            undo_blocks.append(step.name)
    lines = []
    for text, names in groups.items():
        lines += _wrapped(f"  {', '.join(names)}: ", text)
    if plan.rollback:
        failed = plan.outcome.get("failed_step") if plan.outcome else None
        lines.append(f"  with --fail-at {failed}: undo "
                     + ", then ".join(s.name for s in plan.rollback)
                     + " (detailed below)")
    if plan.final is not None:
        lines.append("  finally runs last in every case (after a rollback too)")
    return lines or ["  nothing to undo"]


def policy_text(on_failure: dict) -> str:
    """A failure policy in words."""
    policy = on_failure.get("policy", "abort")
    if policy == "abort":
        return "abort (stop; nothing is undone)"
    if policy == "continue":
        return "continue (the failure is recorded and tolerated)"
    undo = on_failure.get("undo") or []
    if not undo:
        return "rollback (nothing to undo yet)"
    return "rollback: undo " + ", then ".join(undo)


def outcome_lines(plan: Plan) -> list[str]:
    """The outcome the plan expects, and what it takes for granted."""
    outcome = plan.outcome
    lines = [f"Outcome: {outcome.get('status')} (exit {outcome.get('exit_code')})"
             + (f" — {outcome['reason']}" if outcome.get("reason") else "")]
    for assumption in outcome.get("assumes", []):
        lines.append(f"  assuming {assumption}; without approval the run stops there "
                     "(exit 3)")
    return lines


def _wrapped(lead: str, text: str) -> list[str]:
    return textwrap.wrap(lead + text, WIDTH, subsequent_indent=" " * 6,
                         break_on_hyphens=False) or [lead]
