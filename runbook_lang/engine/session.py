"""A run from start to end: prepare, plan or lock, record, drive the interpreter, finish.

`start_run` and `plan_run` are what `runbook run` calls; `resumption.resume_run` continues a
run through the same `drive`. Live output goes to the run's `Display`; the outcome comes back
as a `RunResult` for the command to print.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from ..dataclass import dataclass, field
from ..digest import sha256_hex
from ..errors import EXIT_CODES, LockBusy, RecordError, Refused
from ..evaluation.values import to_json, to_text
from ..reporting.display import Display
from ..store import LockKey, RunStore
from ..store.base import stable_id
from ..store.chain import masked
from ..syntax.loader import Module
from ..version import __version__
from .interpreter import Interpreter, Outcome
from .plan import Plan
from .prepare import ParamInput, complete_runtime, resolve_param_values
from .runtime import Clock, RunOptions, Runtime, StepRun
from .signoff import (
    OperatorKey,
    RunTrust,
    operator_key_spec,
    prove_key,
    require_identities,
    seal_stop,
    signers_record,
)
from .targets import refuse_remote_survivors


@dataclass
class RunResult:
    """How a run ended, for the command to print (summary, JSON, exit code)."""

    run_id: str
    runbook: str
    outcome: Outcome
    duration_ms: int
    transcript: str
    location: str
    steps: list[StepRun] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome.status]


def new_runtime(module: Module, options: RunOptions, display: Display,
                clock: Clock | None = None) -> Runtime:
    """A runtime with `run_id` defined (lets may read it): a fresh id, or, for a dry-run, a
    value known only when a run starts."""
    from ..store.files import new_run_id

    rt = Runtime(module, options, display, clock)
    rt.scope.builtins["run_id"] = rt.scope.placeholder("run_id", "assigned when the run "
                                                       "starts") \
        if options.dry_run else new_run_id()
    return rt


def prepare_runtime(module: Module, options: RunOptions, params: ParamInput, display: Display,
                    clock: Clock | None = None) -> Runtime:
    """Params, secrets, lets and the setter map, all before anything runs."""
    rt = new_runtime(module, options, display, clock)
    resolve_param_values(rt, params)
    complete_runtime(rt)
    return rt


def runbook_title(rt: Runtime) -> str:
    """The header's title, rendered (empty without a header)."""
    header = rt.module.runbook.header
    return rt.evaluator(None).render(header.title) if header is not None else ""


def lock_key(rt: Runtime) -> LockKey:
    """One run at a time per runbook and `environment` (LANGUAGE.md §6.5); a team store
    knows the runbook by its stable id (§12)."""
    environment = rt.scope.params.get("environment")
    header = rt.module.runbook.header
    return LockKey(os.path.realpath(rt.module.path),
                   str(environment) if environment is not None else None, rt.module.path.name,
                   stable_id(rt.module.path, header.id if header is not None else None))


def bind_identity(options: RunOptions, store: RunStore, as_name: str | None) -> None:
    """In a team store the operator is the connection's database role (LANGUAGE.md §12):
    `--as` naming another role, or `--approve GATE=WHO` for another, is refused before
    anything runs; the local store keeps the name the operator gives."""
    role = store.identity
    if role is None:
        return
    if as_name and as_name != role:
        raise Refused(f"--as {as_name}: this store knows you as the database role {role} "
                      "(the role of your connection); in a team store you act as that role, "
                      "so leave --as out or connect as that role")
    for gate, names in options.approvals.items():
        for who in names:
            if who and who != role:
                raise Refused(f"--approve {gate}={who}: in a team store an approval is the "
                              f"connection's role's ({role}); {who} approves with `runbook "
                              "approve` from their own connection")
    options.operator = options.role = role


def take_lock(rt: Runtime, store: RunStore, run_id: str):
    """The run lock for this runbook and environment; Refused naming the holder."""
    holder = {"run_id": run_id, "user": rt.options.operator, "host": rt.options.host,
              "runbook": str(rt.module.path)}
    try:
        return store.lock(lock_key(rt), holder)
    except LockBusy as busy:
        raise Refused(f"refused: {busy.describe()}") from None


# ---------------------------------------------------------------------- dry-run


def plan_run(rt: Runtime, file: str, sign_with: str | None = None) -> Plan:
    """Walk the runbook without effects: the plan."""
    plan = Plan(runbook=file, title=runbook_title(rt),
                params={k: rt.mask(to_text(v)) for k, v in rt.scope.params.items()},
                operator={"user": rt.options.operator, "host": rt.options.host},
                secrets=rt.secret_status,
                param_values={k: masked(to_json(v), rt.mask)
                              for k, v in rt.scope.params.items()})
    if any(s["status"] == "missing" for s in rt.secret_status):
        plan.notes.append("some secrets are not set; a real run would refuse to start "
                          "until they are")
    plan.notes.extend(identity_notes(rt, sign_with))
    plan.mask = rt.mask
    rt.recorder = plan
    outcome: Outcome = Interpreter(rt).execute()
    shown = json.dumps(plan.to_json(), ensure_ascii=False, default=str)
    # The legend names only the placeholders the plan shows.
    plan.legend = {name: rt.mask(origin) for name, origin in rt.scope.legend.items()
                   if re.search(rf"<[^<>\n]*\b{re.escape(name)}\b[^<>\n]*>", shown)}
    plan.outcome = {"status": outcome.status, "exit_code": outcome.exit_code,
                    "failed_step": outcome.failed_step, "reason": outcome.reason or None}
    gates = [s.name for s in plan.steps if s.kind == "gate" and s.status != "skipped"
             and "pre-approved" not in s.attributes]
    if gates:
        # The plan walks on past each gate; the real run waits there for its approvals.
        plan.outcome["assumes"] = [f"gate {name} is approved" for name in gates]
    return plan


# ---------------------------------------------------------------------- a real run


def new_trust(rt: Runtime, sign_with: str | None, run_id: str) -> RunTrust:
    """The run's signers file and the operator's key, proven before anything runs."""
    from ..analysis.identity import signers_path

    signers = signers_path(rt.module)
    trust = RunTrust(signers.resolve() if signers is not None else None, rt.options.operator,
                     run_id=run_id)
    spec = operator_key_spec(sign_with, trust.signers, trust.operator)
    if spec is not None:
        trust.key = prove_key(spec[0], spec[1], trust.operator, run_id, trust.signers)
    return trust


def identity_notes(rt: Runtime, sign_with: str | None) -> list[str]:
    """Dry-run: what a real run would refuse about signatures, found without signing."""
    from ..analysis.identity import signers_path

    signers = signers_path(rt.module)
    if signers is None:
        return []
    trust = RunTrust(signers.resolve(), rt.options.operator)
    spec = operator_key_spec(sign_with, trust.signers, trust.operator)
    trust.starter_key = {"fingerprint": "(not proven in a dry-run)"} if spec else None
    if spec is not None:
        trust.key = OperatorKey(spec[0], spec[1], "(not proven in a dry-run)")
    try:
        require_identities(rt.module, rt.evaluator(None).eval, rt.options.approvals, trust)
    except Refused as error:
        return [f"a real run would refuse: {error}"]
    return []


def start_run(rt: Runtime, store: RunStore, file: str, sign_with: str | None = None
              ) -> RunResult:
    """Run for real: lock, record `run_started`, drive, record the end."""
    run_id = rt.scope.builtins["run_id"]
    trust = new_trust(rt, sign_with, run_id)
    trust.starter, trust.starter_key = trust.operator, trust.key.to_json() if trust.key else None
    require_identities(rt.module, rt.evaluator(None).eval, rt.options.approvals, trust)
    rt.trust = trust
    lock = take_lock(rt, store, run_id)
    try:
        unchecked = refuse_remote_survivors(rt, lock)
        snapshot = rt.module.path.read_bytes()
        try:
            writer = store.create(run_id, snapshot, rt.masker.mask)
        except RecordError as error:
            raise Refused(f"{error}; nothing was run") from None
        title = runbook_title(rt)
        identity = {}
        if trust.signers is not None:
            identity["signers"] = signers_record(trust.signers)
        if trust.key is not None:
            identity["operator_key"] = trust.key.to_json()
        started = writer.append(
            "run_started", runbook=file, sha256=sha256_hex(snapshot),
            title=title, params={k: to_json(v) for k, v in rt.scope.params.items()},
            operator={"user": rt.options.operator, "host": rt.options.host},
            version=__version__, argv=rt.options.argv, mode="run", cwd=str(Path.cwd()),
            runbook_path=str(rt.module.path), lock_takeover=lock.takeover,
            **store.header(lock_key(rt)), **identity,
            **host_settings(rt), **({"remote_groups_unchecked": unchecked} if unchecked
                                    else {}))
        trust.bind(started)
        rt.display.line(f"runbook {__version__} · run {run_id} · {title or file}", "bold")
        return drive(rt, writer, Interpreter(rt), file, store, lock=lock)
    finally:
        lock.release()


def host_settings(rt: Runtime) -> dict:
    """What `run_started` keeps of a run's host settings: a resumed run takes the same
    `--limit` (and, unless told otherwise, the same ssh configuration and forks)."""
    options = rt.options
    if rt.targets is None or not any(u.on is not None for u in rt.module.runbook.of("step")):
        return {}
    inventory = rt.targets.inventory
    return {"limit": options.limit, "forks": options.forks, "ssh_config": options.ssh_config,
            "inventory": inventory.path if inventory is not None else None}


def drive(rt: Runtime, writer, interpreter: Interpreter, file: str, store: RunStore,
          lock=None) -> RunResult:
    """Run the interpreter with the record open; record the end; return the result."""
    writer.sync()
    rt.recorder = writer
    rt.processes = lock
    rt.scope.builtins["run_id"] = writer.run_id
    started = time.monotonic()
    rt.interrupts.install()
    try:
        outcome = interpreter.execute()
    finally:
        rt.interrupts.restore()
        rt.executors.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    lost = getattr(store, "lost", None)
    if outcome.unrecorded and lost:
        # The team store stayed unreachable: the run stopped safely and is resumable.
        outcome.status = "interrupted"
    try:
        if not outcome.unrecorded:
            writer.append("run_finished", status=outcome.status, exit_code=outcome.exit_code,
                          duration_ms=duration_ms, failed_step=outcome.failed_step,
                          reason=outcome.reason or None)
        writer.close()
    except RecordError as error:
        outcome.unrecorded = True
        outcome.reason = outcome.reason or str(error)
        writer.abandon()
    if not outcome.unrecorded:
        # Every stop (end, pause, interruption) is sealed by the operator's key, if any.
        sealed = seal_stop(writer, rt.trust)
        if sealed is not None:
            rt.display.line(sealed, "dim" if sealed.startswith("sealed") else "yellow")
    # The writer knows its own directory (a resumed run may live outside the store's root).
    run_dir = getattr(writer, "run_dir", None)
    ref = None if run_dir is not None else store.resolve(writer.run_id)
    transcript = (str(Path(run_dir) / "transcript.jsonl") if run_dir is not None
                  else str(ref.path) if ref is not None and ref.path is not None
                  else writer.run_id)
    return RunResult(writer.run_id, file, outcome, duration_ms, transcript, store.location,
                     outcome.steps)


# ---------------------------------------------------------------------- requests


@dataclass
class RunRequest:
    """What the operator asked `runbook run` for."""

    file: str
    params: ParamInput = field(default_factory=ParamInput)
    dry_run: bool = False
    yes: bool = False
    approvals: list[str] = field(default_factory=list)
    as_name: str | None = None
    from_step: str | None = None
    fail_at: str | None = None
    interactive: bool = False
    argv: list[str] = field(default_factory=list)
    output_json: bool = False
    display: Display | None = None
    clock: Clock | None = None
    # The operator's signing key (`--sign-with`); else RUNBOOK_SIGNING_KEY or the agent.
    sign_with: str | None = None
    # Steps on hosts: `--limit PATTERN`, `--forks N`, `--ssh-config FILE`.
    limit: str | None = None
    forks: int | None = None
    ssh_config: str | None = None


def prepare_request(request: RunRequest) -> Runtime:
    """Check the file and the operator's request, then settle params, secrets and lets."""
    from .prepare import load_checked, new_options

    module = load_checked(request.file)
    options = new_options(module, dry_run=request.dry_run, yes=request.yes,
                          approvals=request.approvals, as_name=request.as_name,
                          from_step=request.from_step, fail_at=request.fail_at,
                          interactive=request.interactive and not request.dry_run,
                          argv=request.argv, output_json=request.output_json,
                          limit=request.limit, forks=request.forks,
                          ssh_config=request.ssh_config)
    return prepare_runtime(module, options, request.params, request.display or Display(),
                           request.clock)


def plan_request(request: RunRequest) -> Plan:
    """The front door's `plan`."""
    request.dry_run = True
    return plan_run(prepare_request(request), request.file, request.sign_with)


def run_request(request: RunRequest, store: RunStore) -> RunResult:
    """The front door's `run`."""
    rt = prepare_request(request)
    bind_identity(rt.options, store, request.as_name)
    return start_run(rt, store, request.file, request.sign_with)
