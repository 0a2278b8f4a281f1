"""`resume`: continue an interrupted, failed or paused run.

A resumed run is the same run: same id, same record, continued after a `run_resumed` record.
Finished steps never run again; the failed or interrupted one does. A decision made with
`runbook approve` (`approve.py`) is kept by the store beside the run and written into the
record when the run resumes. The transcript must verify first; what a crash leaves (a torn
last line, records after the last sync) is continued and recorded in `run_resumed`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..dataclass import dataclass, field
from ..digest import sha256_hex
from ..errors import Refused
from ..evaluation.params import declared_type, parse_duration
from ..store import LockKey, RunRef, RunStore
from ..syntax.loader import Module
from .interpreter import Interpreter
from .prepare import complete_runtime, load_checked, new_options
from .runtime import Clock, PendingRollback, Progress, Runtime, StepRun
from .session import RunResult, bind_identity, drive, new_runtime, new_trust, take_lock
from .signoff import require_identities, signers_record
from .targets import refuse_remote_survivors

ENDED = ("rolled_back", "rollback_failed", "rejected")
_NO_KEY = LockKey("", None)


@dataclass
class ResumeRequest:
    """What the operator asked `runbook resume` for."""

    ref: str | None = None
    approvals: list[str] = field(default_factory=list)
    yes: bool = False
    as_name: str | None = None
    allow_changed: bool = False
    interactive: bool = False
    argv: list[str] = field(default_factory=list)
    output_json: bool = False
    # The resuming operator's signing key (`--sign-with`); else RUNBOOK_SIGNING_KEY or the agent.
    sign_with: str | None = None
    # Steps on hosts: `--forks N`, `--ssh-config FILE` (the run's own when not given).
    forks: int | None = None
    ssh_config: str | None = None


@dataclass
class AlreadySucceeded:
    """`resume` of a run that already succeeded: nothing to do."""

    run_id: str

    @property
    def message(self) -> str:
        return f"run {self.run_id} already succeeded; nothing to resume"


def resume_run(request: ResumeRequest, store: RunStore, display_for,
               clock: Clock | None = None) -> RunResult | AlreadySucceeded:
    """Continue an interrupted, failed or paused run (LANGUAGE.md §9)."""
    ref = pick_run(store, request.ref)
    records, _torn = store.records(ref)
    checked = store.verify(ref)
    # A torn last line and unsealed records after the head are what a crash leaves: continued
    # (and recorded in run_resumed). Anything else was changed by someone: refused.
    bad = checked.tampered
    if bad:
        raise Refused(f"the transcript of {ref.run_id} does not verify ({bad[0].reason}); "
                      "it will not be continued")
    started = records[0] if records and records[0].get("event") == "run_started" else None
    if started is None:
        raise Refused(f"{ref.run_id}: the transcript has no run_started record")
    status = last_status(records)
    if status == "succeeded":
        return AlreadySucceeded(ref.run_id)
    if status in ENDED:
        raise Refused(f"run {ref.run_id} ended as {status}; it cannot be resumed: start a new "
                      "run (runbook run …)")
    path = runbook_path(started)
    if not path.is_file():
        raise Refused(f"the runbook of run {ref.run_id} is gone: {path}")
    changed = sha256_hex(path.read_bytes()) != started.get("sha256")
    if changed and not request.allow_changed:
        raise Refused(f"{path} changed since run {ref.run_id} started:\n"
                      + describe_changes(store.snapshot(ref), path)
                      + "\nresume with --allow-changed to continue anyway (recorded)")
    module = load_checked(str(path))
    # The same hosts as the run: its `--limit`; its ssh configuration and forks unless the
    # operator gives others (a resume from another machine may need another config).
    options = new_options(module, yes=request.yes, approvals=request.approvals,
                          as_name=request.as_name, interactive=request.interactive,
                          argv=request.argv, output_json=request.output_json,
                          limit=started.get("limit"),
                          forks=request.forks or started.get("forks"),
                          ssh_config=request.ssh_config or started.get("ssh_config"))
    bind_identity(options, store, request.as_name)
    rt = new_runtime(module, options, display_for(options), clock)
    rt.scope.builtins["run_id"] = ref.run_id
    rt.scope.params = restore_params(module, started.get("params") or {})
    complete_runtime(rt)
    rt.resume.operator_at_start = (started.get("operator") or {}).get("user")
    progress = restore_progress(rt, records)
    trust = new_trust(rt, request.sign_with, ref.run_id)
    trust.bind(started)
    require_identities(module, rt.evaluator(None).eval, options.approvals, trust,
                       run_id=ref.run_id, done=frozenset(progress.done))
    rt.trust = trust
    restore_gates(rt, records, store.decisions(ref))
    identity: dict = {}
    if trust.signers is not None:
        identity["signers"] = signers_record(trust.signers)
    if trust.key is not None:
        identity["operator_key"] = trust.key.to_json()
    lock = take_lock(rt, store, ref.run_id)
    try:
        unchecked = refuse_remote_survivors(rt, lock)
        writer, torn = store.reopen(ref, rt.masker.mask)
        first, last = checked.unsealed or (None, None)
        writer.append("run_resumed", operator={"user": options.operator, "host": options.host},
                      argv=options.argv, allow_changed=bool(changed and request.allow_changed),
                      torn=torn.to_json() if torn else None, previous_status=status,
                      lock_takeover=lock.takeover, **resumed_store(store),
                      # Records a killed run left after its head: taken over as found.
                      unsealed={"first": first, "last": last} if first is not None else None,
                      **identity,
                      **({"remote_groups_unchecked": unchecked} if unchecked else {}))
        kept = len(progress.done)
        rt.display.line(f"resuming run {ref.run_id} ({status}); "
                        f"{kept} finished step{'s' if kept != 1 else ''} kept", "bold")
        return drive(rt, writer, Interpreter(rt, progress), started.get("runbook", str(path)),
                     store, lock=lock)
    finally:
        lock.release()


def resumed_store(store: RunStore) -> dict:
    """Where a resume in a team store ran from: the store and the resuming role (any machine
    may resume; `operator.host` names it)."""
    header = store.header(_NO_KEY)
    return {"store": header["store"]} if "store" in header else {}


def pick_run(store: RunStore, ref: str | None) -> RunRef:
    """The run named (a run id, run directory or transcript), the newest unfinished run of
    a runbook file (`runbook resume deploy.runbook`), or, with nothing named, the newest
    unfinished run here — refusing to guess when runs of several runbooks wait."""
    if ref and ref.endswith(".runbook") and Path(ref).is_file():
        return _newest_of_runbook(store, Path(ref))
    if ref:
        found = store.resolve(ref)
        if found is None:
            raise Refused(f"no run {ref!r} here (give a run id, a run directory or a "
                          "transcript.jsonl)")
        return found
    summaries, where = _runs_in_reach(store)
    waiting = _unfinished(store, summaries)
    books = {book for book, _ in waiting}
    if len(books) > 1:
        newest: dict[str, RunRef] = {}
        for book, run in waiting:
            newest.setdefault(book, run)
        listed = "; ".join(f"{book} ({run.run_id})" for book, run in newest.items())
        raise Refused(f"unfinished runs of {len(books)} runbooks ({where}): {listed}; say which "
                      "one: runbook resume FILE (its newest unfinished run) or RUN_ID")
    if waiting:
        return waiting[0][1]
    raise Refused(f"no unfinished run to resume (looked {where}; see runbook history)")


def _runs_in_reach(store: RunStore) -> tuple[list, str]:
    """The runs a bare `resume` chooses from, newest first, and where they were looked for:
    the team store, a `--transcript-dir`, or every `.runbook/runs` under the repository."""
    if not getattr(store, "searches_repository", False):
        return list(store.runs()), f"in {store.location}"
    from ..store.discovery import find_runs_dirs
    from ..store.files import LocalStore

    found = find_runs_dirs()
    summaries = [run for runs_dir in found.runs_dirs for run in LocalStore(runs_dir).runs()]
    summaries.sort(key=lambda s: s.run_id, reverse=True)
    return summaries, found.where()


def _unfinished(store: RunStore, summaries) -> list[tuple[str, RunRef]]:
    """(runbook path, run) of each unfinished run, newest first."""
    out = []
    for summary in summaries:
        run = store.resolve(summary.run_id) or (
            store.resolve(summary.location) if summary.location else None)
        if run is None:
            continue
        records = store.records(run)[0]
        if last_status(records) in ("succeeded", *ENDED):
            continue
        started = next((r for r in records if r.get("event") == "run_started"), {})
        out.append((str(runbook_path(started)), run))
    return out


def _newest_of_runbook(store: RunStore, file: Path) -> RunRef:
    """The newest unfinished run of `file`, here or anywhere under the repository."""
    from ..store.discovery import find_runs_dirs
    from ..store.files import LocalStore

    target = file.resolve()
    summaries = list(store.runs())
    found = find_runs_dirs()
    for runs_dir in found.runs_dirs:
        summaries += LocalStore(runs_dir).runs()
    summaries.sort(key=lambda s: s.run_id, reverse=True)
    for book, run in _unfinished(store, summaries):
        if Path(book).resolve() == target:
            return run
    raise Refused(f"no unfinished run of {file} to resume (looked {found.where()}; see "
                  "runbook history)")


def last_status(records: list[dict]) -> str:
    """The status of the run's latest end, 'interrupted' when it never recorded one."""
    for rec in reversed(records):
        if rec.get("event") == "run_finished":
            return rec.get("status", "interrupted")
        if rec.get("event") == "run_resumed":
            break
    return "interrupted"


def runbook_path(started: dict):
    """The runbook file a run started from."""

    if started.get("runbook_path"):
        return Path(started["runbook_path"])
    return Path(started.get("cwd") or ".") / started.get("runbook", "")


def restore_params(module: Module, stored: dict) -> dict:
    """Params as the run started with them (durations come back from their text)."""
    values = {}
    for param in module.runbook.of("param"):
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


def restore_progress(rt: Runtime, records: list[dict]) -> Progress:
    """What the run did so far: finished steps (never re-run), completed ones (for a
    rollback), every instance with its status and duration (for the summary), the variables,
    and a rollback that was under way."""
    units = {u.name.name: u for u in rt.module.runbook.units}
    types = variable_types(rt.module)
    instances: dict[str, StepRun] = {}
    finished: dict[str, dict] = {}
    loops: dict[str, dict] = {}
    # A host's instance: its place (from `step_started`) and the names it set.
    places: dict[str, dict] = {}
    bound: dict[str, dict] = {}
    pending: PendingRollback | None = None
    for rec in records:
        event, phase = rec.get("event"), rec.get("phase", "step")
        if event == "rollback_started" and not rec.get("resumed"):
            pending = PendingRollback(rec.get("trigger", "?"), list(rec.get("steps") or []),
                                      rec.get("cause", "failed"), rec.get("reason") or "")
        elif event == "rollback_finished" and pending is not None:
            pending.finished = True
            pending.failed = pending.failed or rec.get("status") == "failed"
        elif phase == "rollback":
            if event == "step_finished" and pending is not None:
                _undone(pending, instances, rec)
        elif phase != "step":
            continue
        elif event == "step_started":
            loops[rec["step"]] = rec.get("loop") or {}
            if rec.get("host") is not None:
                places[rec["step"]] = rec
        elif event == "step_finished":
            instances[rec["step"]] = _instance(rt, units, rec, loops)
            if rec.get("status") in ("succeeded", "skipped") or rec.get("tolerated"):
                finished[rec["step"]] = rec
            else:
                finished.pop(rec["step"], None)
        elif event == "hosts_finished" and rec.get("status") != "failed":
            # The step ended within its error budget (or under `continue`): its failed
            # hosts were tolerated and are not run again.
            for host in rec.get("failed") or []:
                name = f"{rec['step']}[{host}]"
                if name in instances:
                    instances[name].status = "tolerated"
                    finished[name] = {"status": "tolerated"}
        elif event == "variable_set" and rec.get("host") is not None:
            _restore_variable(rt, rec, types, bound.setdefault(rec.get("step", "?"), {}))
        elif event == "variable_set":
            _restore_variable(rt, rec, types)
    for name, step in instances.items():
        if name in places:
            _place(rt, step, places[name], bound.get(name, {}))
    completed = [instances[name] for name, rec in finished.items()
                 if rec.get("status") == "succeeded" and instances[name].unit is not None
                 and instances[name].unit.kind != "gate"]
    ran = [step for step in instances.values() if step.unit is not None]
    return Progress(set(finished), completed, ran, pending)


def _instance(rt: Runtime, units: dict, rec: dict, loops: dict) -> StepRun:
    name = rec["step"]
    status = "tolerated" if rec.get("tolerated") else rec.get("status", "failed")
    return StepRun(units.get(name.split("[")[0]), name, rec.get("title", name), "",
                   loop=loops.get(name, {}), cwd=rt.base_dir, status=status,
                   status_reason=rec.get("reason") or "",
                   duration_ms=rec.get("duration_ms", 0),
                   unreachable=bool(rec.get("unreachable")))


def _undone(pending: PendingRollback, instances: dict[str, StepRun], rec: dict) -> None:
    """An undo block that ended before the stop: it is never run again."""
    pending.done.add(rec["step"])
    failed = rec.get("status") == "failed"
    pending.failed = pending.failed or failed
    step = instances.get(rec["step"])
    if step is not None:
        step.status = "rollback_failed" if failed else "rolled_back"


def _restore_variable(rt: Runtime, rec: dict, types: dict, into: dict | None = None) -> None:
    """A recorded variable, back in the run's scope (or `into`, a host's instance)."""
    if rec.get("value") == "***" or rec.get("too_large"):
        if into is not None:
            into.pop(rec["name"], None)
            return  # reading it in the undo then fails as unset, naming the name
        rt.scope.unrestorable[rec["name"]] = rec.get("step", "?")
        rt.scope.variables.pop(rec["name"], None)
    elif into is not None:
        into[rec["name"]] = _restore_value(rec.get("value"), types.get(rec["name"]))
    else:
        rt.scope.variables[rec["name"]] = _restore_value(rec.get("value"),
                                                         types.get(rec["name"]))
        rt.scope.unrestorable.pop(rec["name"], None)


def _place(rt: Runtime, step: StepRun, started: dict, bound: dict) -> None:
    """A host's instance as it ran: its host (from the inventory as it is now), where it
    stood among the step's hosts and batches, and the names it had set (for its undo)."""
    from ..targets.model import Inventory

    name = started["host"]
    inventory = rt.targets.inventory if rt.targets is not None else None
    host = inventory.hosts.get(name) if inventory is not None else None
    if host is None:
        host = Inventory.from_names([name]).hosts[name]
    step.host = host
    step.bindings = {"host": name, "vars": dict(host.vars), **bound}
    step.batch = started.get("batch") or 0
    step.position = started.get("position") or 0
    step.hosts = started.get("hosts") or 0


def variable_types(module: Module) -> dict[str, str | None]:
    """The static type of each `into`/`set` variable, where the analyser knows it."""
    from ..analysis.analyzer import Analyser

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


def restore_gates(rt: Runtime, records: list[dict], decisions: list[dict]) -> None:
    """Approvals already recorded, decisions made since, and when each gate began to wait."""
    for rec in records:
        event = rec.get("event")
        if event == "gate_approved":
            rt.resume.prior_approvals.setdefault(rec["gate"], []).append(rec["approver"])
        elif event == "gate_waiting" and rec["gate"] not in rt.resume.gate_waiting_since:
            rt.resume.gate_waiting_since[rec["gate"]] = epoch(rec["time"])
        if rt.trust is not None and isinstance(rec.get("decision_id"), str):
            rt.trust.recorded.add(rec["decision_id"])
    for decision in decisions:
        rt.resume.stored_decisions.setdefault(decision["gate"], []).append(decision)


def epoch(stamp: str) -> float:
    """Seconds since the epoch of a record's `time`."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def describe_changes(snapshot: bytes | None, current) -> str:
    """Steps added, removed and edited between the runbook as it ran and as it is now."""
    try:
        old_text = snapshot.decode("utf-8") if snapshot is not None else None
        new_text = current.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        old_text = None
    if old_text is None:
        return "  (the earlier version could not be compared)"
    old, new = parse_text(old_text, str(current)), parse_text(new_text, str(current))
    if old is None or new is None:
        return "  (one of the versions does not parse)"

    def units(ast, text):
        return {u.name.name: text[u.span.start:u.span.end] for u in ast.units}

    before, after = units(old, old_text), units(new, new_text)
    lines = [f"  added: {name}" for name in after if name not in before]
    lines += [f"  removed: {name}" for name in before if name not in after]
    lines += [f"  edited: {name}" for name in after
              if name in before and before[name] != after[name]]
    return "\n".join(lines) or "  (outside the steps: params, lets, tasks or imports)"


def parse_text(text: str, name: str):
    """The AST of a runbook's text, or None when it does not parse."""
    from ..syntax.parser import ParseFailure, parse_source
    from ..syntax.source import Source

    try:
        return parse_source(Source(name, text))[0]
    except ParseFailure:
        return None
