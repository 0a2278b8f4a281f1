"""`runbook resume` and `runbook approve`: continue a run, decide at a gate it waits at.

A resumed run is the same run: same id, same directory, the transcript continued after a
`run_resumed` record. Finished steps never run again; the failed or interrupted one does.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

from ..analysis.analyzer import Analyser
from ..engine.runtime import RunOptions, StepRun
from ..evaluation.params import declared_type, parse_duration
from ..store.transcript import TranscriptWriter, find_run_dir, list_runs, read_records, verify
from .execute import SNAPSHOT, drive, take_lock
from .run import (
    EXIT_USAGE,
    Refused,
    build_approvals,
    complete_runtime,
    file_sha256,
    load_checked,
    new_runtime,
    operator_name,
)

DECISIONS = "approvals.jsonl"
ENDED = ("rolled_back", "rollback_failed", "rejected")


def run_resume(args) -> int:
    """Entry point of `runbook resume`."""
    try:
        return _resume(args)
    except Refused as error:
        sys.stderr.write(f"runbook: error: {error}\n")
        return EXIT_USAGE


def _resume(args) -> int:
    run_dir = _pick_run(args.run)
    records, torn = read_records(run_dir)
    checked = verify(run_dir)
    bad = [p for p in checked.problems if "torn" not in p.reason]
    if bad:
        raise Refused(f"the transcript of {run_dir.name} does not verify ({bad[0].reason}); "
                      "it will not be continued")
    started = records[0] if records and records[0].get("event") == "run_started" else None
    if started is None:
        raise Refused(f"{run_dir.name}: the transcript has no run_started record")
    status = _last_status(records)
    if status == "succeeded":
        message = f"run {run_dir.name} already succeeded; nothing to resume"
        if getattr(args, "output", "text") == "json":
            print(json.dumps({"run_id": run_dir.name, "status": "succeeded", "exit_code": 0,
                              "resumed": False, "message": message}))
        else:
            print(message)
        return 0
    if status in ENDED:
        raise Refused(f"run {run_dir.name} ended as {status}; it cannot be resumed: start a new "
                      "run (runbook run …)")
    path = _runbook_path(started)
    if not path.is_file():
        raise Refused(f"the runbook of run {run_dir.name} is gone: {path}")
    changed = file_sha256(path) != started.get("sha256")
    if changed and not args.allow_changed:
        raise Refused(f"{path} changed since run {run_dir.name} started:\n"
                      + describe_changes(run_dir / SNAPSHOT, path)
                      + "\nresume with --allow-changed to continue anyway (recorded)")
    module = load_checked(str(path))
    operator = operator_name(args.as_name)
    options = RunOptions(yes=args.yes, approvals=build_approvals(args.approve, module),
                         operator=operator, host=socket.gethostname(),
                         interactive=sys.stdin.isatty(), argv=["runbook", *sys.argv[1:]],
                         output_json=getattr(args, "output", "text") == "json")
    rt = new_runtime(module, options)
    rt.builtins["run_id"] = run_dir.name
    rt.params = restore_params(module, started.get("params") or {})
    complete_runtime(rt)
    rt.operator_at_start = (started.get("operator") or {}).get("user")
    done, completed = restore_progress(rt, records)
    restore_gates(rt, records, run_dir)
    os.chdir(started.get("cwd") or os.getcwd())
    lock = take_lock(rt, run_dir.name)
    if lock is None:
        return EXIT_USAGE
    try:
        writer, torn = TranscriptWriter.reopen(run_dir, rt.mask)
        writer.append("run_resumed", operator={"user": operator, "host": options.host},
                      argv=options.argv, allow_changed=bool(changed and args.allow_changed),
                      torn=torn, previous_status=status, lock_takeover=lock.takeover)
        rt.display.line(f"resuming run {run_dir.name} ({status}); "
                        f"{len(done)} finished step{'s' if len(done) != 1 else ''} kept", "bold")
        from ..engine.interpreter import Interpreter

        return drive(rt, writer, Interpreter(rt, completed), started.get("runbook", str(path)),
                     done=done)
    finally:
        lock.release()


def _pick_run(ref: str | None) -> Path:
    if ref:
        run_dir = find_run_dir(ref, None)
        if run_dir is None:
            raise Refused(f"no run {ref!r} here (give a run id, a run directory or a "
                          "transcript.jsonl)")
        return run_dir
    for run_dir in list_runs(None):
        records, _ = read_records(run_dir)
        if _last_status(records) not in ("succeeded", *ENDED):
            return run_dir
    raise Refused("no unfinished run here to resume (see runbook history)")


def _last_status(records: list[dict]) -> str:
    """The status of the run's latest end, 'interrupted' when it never recorded one."""
    for rec in reversed(records):
        if rec.get("event") == "run_finished":
            return rec.get("status", "interrupted")
        if rec.get("event") == "run_resumed":
            break
    return "interrupted"


def _runbook_path(started: dict) -> Path:
    if started.get("runbook_path"):
        return Path(started["runbook_path"])
    return Path(started.get("cwd") or ".") / started.get("runbook", "")


def restore_params(module, stored: dict) -> dict:
    """Params as the run started with them (durations come back from their text)."""
    values = {}
    for param in module.ast.of("param"):
        name = param.name.name
        if name not in stored:
            continue
        value = stored[name]
        ptype = declared_type(param)
        if ptype == "duration" and isinstance(value, str):
            value = parse_duration(value)
        elif ptype == "float" and isinstance(value, int):
            value = float(value)
        values[name] = value
    return values


def restore_progress(rt, records: list[dict]) -> tuple[set[str], list[StepRun]]:
    """Finished steps (never re-run), the completed ones (for rollback), the variables."""
    units = {u.name.name: u for u in rt.module.ast.units}
    types = variable_types(rt.module)
    finished: dict[str, dict] = {}
    loops: dict[str, dict] = {}
    for rec in records:
        event = rec.get("event")
        if rec.get("phase", "step") != "step":
            continue
        if event == "step_started":
            loops[rec["step"]] = rec.get("loop") or {}
        elif event == "step_finished":
            if rec.get("status") in ("succeeded", "skipped"):
                finished[rec["step"]] = rec
            else:
                finished.pop(rec["step"], None)
        elif event == "variable_set":
            if rec.get("value") == "***":
                rt.unrestorable[rec["name"]] = rec.get("step", "?")
                rt.variables.pop(rec["name"], None)
            else:
                rt.variables[rec["name"]] = _restore_value(rec.get("value"),
                                                           types.get(rec["name"]))
                rt.unrestorable.pop(rec["name"], None)
    completed = []
    for name, rec in finished.items():
        unit = units.get(name.split("[")[0])
        if unit is None or rec.get("status") != "succeeded" or unit.kind == "gate":
            continue
        completed.append(StepRun(unit, name, rec.get("title", name), "", loop=loops.get(name, {}),
                                 cwd=rt.base_dir, status="succeeded",
                                 duration_ms=rec.get("duration_ms", 0)))
    return set(finished), completed


def variable_types(module) -> dict[str, str | None]:
    """The static type of each `into`/`set` variable, where the analyser knows it."""
    analyser = Analyser(module, True)
    analyser.run()
    return {name: sym.type for name, sym in analyser.scope.items() if sym.kind == "var"}


def _restore_value(value, vtype: str | None):
    # The transcript holds JSON, where a duration is its text (`90s`): read it back as one.
    if vtype == "duration" and isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return value
    return value


def restore_gates(rt, records: list[dict], run_dir: Path) -> None:
    """Approvals already recorded, decisions made since, and when each gate began to wait."""
    for rec in records:
        event = rec.get("event")
        if event == "gate_approved":
            rt.prior_approvals.setdefault(rec["gate"], []).append(rec["approver"])
        elif event == "gate_waiting" and rec["gate"] not in rt.gate_waiting_since:
            rt.gate_waiting_since[rec["gate"]] = _epoch(rec["time"])
    for decision in read_decisions(run_dir):
        rt.stored_decisions.setdefault(decision["gate"], []).append(decision)


def read_decisions(run_dir: Path) -> list[dict]:
    path = run_dir / DECISIONS
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def describe_changes(snapshot: Path, current: Path) -> str:
    """Steps added, removed and edited between the runbook as it ran and as it is now."""
    from ..syntax.loader import Loader

    try:
        old = Loader().load(snapshot, str(snapshot))
        new = Loader().load(current, str(current))
    except Exception:  # noqa: BLE001 - a description is best effort; the refusal stands
        return "  (the earlier version could not be compared)"
    if old.ast is None or new.ast is None:
        return "  (one of the versions does not parse)"

    def units(module):
        text = module.source.text
        return {u.name.name: text[u.span.start:u.span.end] for u in module.ast.units}

    before, after = units(old), units(new)
    lines = [f"  added: {name}" for name in after if name not in before]
    lines += [f"  removed: {name}" for name in before if name not in after]
    lines += [f"  edited: {name}" for name in after
              if name in before and before[name] != after[name]]
    return "\n".join(lines) or "  (outside the steps: params, lets, tasks or imports)"


# ---------------------------------------------------------------------- approve


def run_approve(args) -> int:
    """Entry point of `runbook approve RUN_ID GATE --as NAME [--reject] [--reason TEXT]`."""
    try:
        message = _approve(args)
    except Refused as error:
        sys.stderr.write(f"runbook: error: {error}\n")
        return EXIT_USAGE
    print(message)
    return 0


def _approve(args) -> str:
    run_dir = find_run_dir(args.run_id, None)
    if run_dir is None:
        raise Refused(f"no run {args.run_id!r} here (see runbook history)")
    records, _ = read_records(run_dir)
    waits = [r for r in records if r.get("event") == "gate_waiting"]
    gates = {r["gate"] for r in waits} | gate_names(run_dir / SNAPSHOT)
    status = _last_status(records)
    if status != "paused" or not waits:
        raise Refused(f"run {run_dir.name} is not waiting at a gate (it is {status})")
    waiting = waits[-1]
    if args.gate != waiting["gate"]:
        if args.gate not in gates:
            raise Refused(f"run {run_dir.name} has no gate {args.gate!r}; it waits at gate "
                          f"{waiting['gate']!r}")
        raise Refused(f"run {run_dir.name} is not waiting at gate {args.gate!r}; it waits at "
                      f"gate {waiting['gate']!r}")
    first_wait = next(r for r in waits if r["gate"] == args.gate)
    timeout_ms = waiting.get("timeout_ms")
    if timeout_ms is not None and time.time() - _epoch(first_wait["time"]) > timeout_ms / 1000:
        raise Refused(f"gate {args.gate} of run {run_dir.name} timed out (it waited since "
                      f"{first_wait['time']}); resuming ends the run as rejected: "
                      f"runbook resume {run_dir.name}")
    who = args.as_name
    approvers = waiting.get("approvers")
    if approvers is not None and who not in approvers:
        raise Refused(f"{who!r} may not approve gate {args.gate} (approvers: "
                      f"{', '.join(approvers)})")
    if waiting.get("self_approval") is False and who == waiting.get("operator"):
        raise Refused(f"{who!r} started run {run_dir.name} and gate {args.gate} has "
                      "self_approval false")
    voted = list(waiting.get("approved") or [])
    voted += [r["approver"] for r in records
              if r.get("event") == "gate_approved" and r.get("gate") == args.gate]
    decisions = [d for d in read_decisions(run_dir) if d["gate"] == args.gate]
    voted += [d["approver"] for d in decisions]
    if who in voted:
        raise Refused(f"{who!r} has already decided on gate {args.gate} of run {run_dir.name}")
    decision = {"gate": args.gate, "approver": who, "reject": bool(args.reject),
                "reason": args.reason or "", "time": _now(), "host": socket.gethostname(),
                "method": "approve-command"}
    with open(run_dir / DECISIONS, "a", encoding="utf-8") as out:
        out.write(json.dumps(decision) + "\n")
        out.flush()
        os.fsync(out.fileno())
    if args.reject:
        return (f"recorded: {who} rejects gate {args.gate} of run {run_dir.name}\n"
                f"the run ends as rejected when resumed: runbook resume {run_dir.name}")
    approvals = len(set(waiting.get("approved") or []) | {d["approver"] for d in decisions
                                                          if not d.get("reject")} | {who})
    require = waiting.get("require", 1)
    left = max(0, require - approvals)
    tail = (f"quorum met: runbook resume {run_dir.name}" if left == 0 else
            f"{left} more approval{'s' if left != 1 else ''} needed before resuming")
    return (f"recorded: {who} approves gate {args.gate} of run {run_dir.name} "
            f"({approvals} of {require})\n{tail}")


def gate_names(snapshot: Path) -> set[str]:
    """The gates of the runbook as the run started it, reached or not (empty if unreadable)."""
    from ..syntax.parser import parse_file

    try:
        _, ast, _ = parse_file(snapshot)
    except (OSError, UnicodeDecodeError):
        return set()
    return {gate.name.name for gate in ast.of("gate")} if ast is not None else set()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
