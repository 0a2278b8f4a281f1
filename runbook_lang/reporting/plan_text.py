"""The plan as people read it: what `runbook run --dry-run` prints."""

from __future__ import annotations

from ..engine.plan import Plan, PlanStep


def render_plan(plan: Plan) -> str:
    """The plan as people read it."""
    lines = [f"Plan for {plan.runbook}" + (f" — {plan.title}" if plan.title else ""),
             "Dry-run: nothing is executed, no file is written, no lock is taken, no "
             "transcript is recorded.",
             f"Operator: {plan.operator.get('user')}@{plan.operator.get('host')}"]
    if plan.params:
        lines.append("Params:")
        width = max(len(k) for k in plan.params)
        for name, value in plan.params.items():
            lines.append(f"  {name.ljust(width)} = {value}")
    for secret in plan.secrets:
        lines.append(f"Secret {secret['name']} from {secret['source']}: {secret['status']}")
    for note in plan.notes:
        lines.append(f"Note: {note}")
    lines.append("")
    for step in plan.steps:
        lines.extend(_render_step(step))
    if plan.rollback:
        lines.append("Rollback (if the failure happens as planned):")
        for step in plan.rollback:
            lines.extend("  " + line if line else "" for line in _render_step(step))
    if plan.final is not None:
        lines.extend(_render_step(plan.final))
    if plan.outcome:
        lines.append(f"Outcome: {plan.outcome.get('status')} (exit {plan.outcome.get('exit_code')})"
                     + (f" — {plan.outcome['reason']}" if plan.outcome.get("reason") else ""))
        for assumption in plan.outcome.get("assumes", []):
            lines.append(f"  assuming {assumption}; without approval the run stops there "
                         "(exit 3)")
    return "\n".join(lines).rstrip() + "\n"


def _render_step(step: PlanStep) -> list[str]:
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
    for action in step.actions:
        lines.append("     " + "  " * action.get("depth", 0) + _render_action(action))
    if step.on_failure:
        lines.append(f"     on failure: {_render_on_failure(step.on_failure)}")
    lines.append("")
    return lines


def _render_action(action: dict) -> str:
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
        return f"task {action['call']}:"
    if kind == "gate":
        return action.get("text", "gate")
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in action.items()
                                   if k not in ("kind", "depth"))


def _render_on_failure(on_failure: dict) -> str:
    policy = on_failure.get("policy", "abort")
    if policy != "rollback":
        return {"abort": "abort (stop; nothing is undone)",
                "continue": "continue (record the failure and go on)"}.get(policy, policy)
    undo = on_failure.get("undo", [])
    if not undo:
        return "rollback (nothing to undo)"
    return "rollback → " + ", then ".join(undo)
