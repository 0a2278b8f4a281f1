"""The plan as people read it: what `runbook run --dry-run` prints."""

from __future__ import annotations

from ..engine.plan import Plan, PlanStep
from .plan_summary import WIDTH, policy_text, render_summary


def render_plan(plan: Plan, expand: bool = False) -> str:
    """The plan as people read it: the header, the one-screen summary, then the detail.
    Calls into imported modules (std/…) fold to one line unless `expand`."""
    lines = [f"Plan for {plan.runbook}" + (f" — {plan.title}" if plan.title else ""),
             "Dry-run: nothing is executed, no file is written, no lock is taken, no "
             "transcript is recorded.",
             f"Operator: {plan.operator.get('user')}@{plan.operator.get('host')}"]
    if plan.params:
        lines += _wrapped("Params: ", " · ".join(f"{k}={v}" for k, v in plan.params.items()))
    for secret in plan.secrets:
        lines.append(f"Secret {secret['name']} from {secret['source']}: {secret['status']}")
    for note in plan.notes:
        lines.append(f"Note: {note}")
    lines.append("")
    lines += render_summary(plan)
    lines += ["", "", "Detail" + ("" if expand else " (calls into imported modules folded; "
                                  "--expand shows their bodies)"), ""]
    for step in plan.steps:
        lines.extend(_render_step(step, expand))
    if plan.rollback:
        lines.append("Rollback (if the failure happens as planned):")
        for step in plan.rollback:
            lines.extend("  " + line if line else "" for line in _render_step(step, expand))
    if plan.final is not None:
        lines.extend(_render_step(plan.final, expand))
    return "\n".join(lines).rstrip() + "\n"


def _wrapped(lead: str, text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(lead + text, WIDTH, subsequent_indent="  ",
                         break_on_hyphens=False) or [lead]


def _render_step(step: PlanStep, expand: bool = False) -> list[str]:
    if step.number:
        head = f"{step.number}. {step.kind} {step.name}: {step.title}"
    elif step.kind == "undo":
        head = f"undo {step.name}:"
    elif step.kind == step.name:
        head = f"{step.kind}: {step.title}"
    else:
        head = f"{step.kind} {step.name}: {step.title}"
    status = step.status if step.status != "will run" else ""
    lines = [head + (f"  [{status}" + (f": {step.reason}" if step.reason else "") + "]"
                     if status else "")]
    for key, value in step.attributes.items():
        lines.append(f"     {key}: {value}")
    folded_below: int | None = None  # the depth of a folded call: deeper actions are its body
    for action in step.actions:
        depth = action.get("depth", 0)
        if folded_below is not None:
            if depth > folded_below:
                continue
            folded_below = None
        if action["kind"] == "task" and action.get("module") and not expand:
            folded_below = depth
        lines.append("     " + "  " * depth + _render_action(action, expand))
    if step.on_failure:
        lines.append(f"     on failure: {policy_text(step.on_failure)}")
    lines.append("")
    return lines


def _render_action(action: dict, expand: bool = False) -> str:
    kind = action["kind"]
    if kind == "run":
        command = action["command"]
        into = f"  → into {action['into']}" if action.get("into") else ""
        if "\n" in command:
            body = command.rstrip("\n").replace("\n", "\n" + " " * 12)
            return f"run: {body}{into}"
        return f"run: {command}{into}"
    if kind == "http":
        return f"http: {action['method']} {action['url']}"
    if kind in ("check", "watch"):
        polling = f" ({action['polling']})" if action.get("polling") else ""
        expects = "; ".join(action.get("expects", [])) or "the probe succeeds"
        return f"{kind}: {action['title']}{polling}, expect {expects}"
    if kind == "confirm":
        return f"confirm: {action['question']}"
    if kind == "note":
        return "note: " + action["text"].rstrip("\n").replace("\n", "\n" + " " * 13)
    if kind == "wait":
        return f"wait: {action['duration']}"
    if kind == "set":
        return f"set {action['name']} = {action['value']}"
    if kind == "fail":
        return f"fail: {action['message']}"
    if kind == "branch":
        return f"{action['condition']}:"
    if kind == "for":
        if "item" in action:
            return f"for {action['var']} = {action['item']}:"
        return f"for each {action['var']} in {action['over']}:"
    if kind == "task":
        if action.get("module") and not expand:
            return f"task {action['call']}  ({action['module']})"
        return f"task {action['call']}:"
    if kind == "gate":
        return action.get("text", "gate")
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in action.items()
                                   if k not in ("kind", "depth"))
