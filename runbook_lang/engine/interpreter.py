"""Executes a runbook: steps in file order, retries, failure policies, the saga rollback,
gates and `finally` (LANGUAGE.md §7, §10). In a dry-run the same walk builds the plan.
"""

from __future__ import annotations

import threading
import time
from functools import cached_property
from pathlib import Path

from ..dataclass import dataclass, field
from ..errors import EXIT_CODES, EvalError, Interrupted, RecordError, StepFailed
from ..evaluation.values import Duration, Unknown, to_text
from ..hints import TYPE_CHECKING
from ..syntax import nodes as n
from .plan import PlanStep
from .runtime import Frame, PendingRollback, Progress, Runtime, StepRun, host_order, undo_block
from .statements import Statements

if TYPE_CHECKING:
    from .gates import Gates
    from .hosts import HostStep


@dataclass
class Outcome:
    """How a run ended."""

    status: str
    failed_step: str | None = None
    reason: str = ""
    steps: list[StepRun] = field(default_factory=list)
    # The record could not be written: the run stopped without its end recorded.
    unrecorded: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


class Interpreter:
    """Runs (or plans) the units of a loaded runbook with an initialised Runtime."""

    def __init__(self, rt: Runtime, progress: Progress | None = None) -> None:
        self.rt = rt
        self.statements = Statements(rt)
        self.ast = rt.module.runbook
        self.progress = progress or Progress()
        # The instances of a step on hosts finish in threads of their own.
        self._lock = threading.Lock()
        # Steps that finished (earlier ones too, after a resume): what a rollback unwinds.
        self.completed: list[StepRun] = host_order(list(self.progress.completed))
        # Every step instance of the run so far, for the summary.
        self.ran: list[StepRun] = list(self.progress.ran)
        self._ran_names = {step.name for step in self.ran}
        # Failures tolerated by `on_failure continue`: recorded, shown, never undone.
        self.tolerated: list[StepRun] = []
        self.rollback_failed = False
        self.units = self.ast.units

    # Gates and steps on hosts bring their own machinery (approvals and signatures, thread
    # pools): loaded by the first gate or step on hosts, not by every run.
    @cached_property
    def gates(self) -> Gates:
        from .gates import Gates

        return Gates(self.rt, self)

    @cached_property
    def hosts(self) -> HostStep:
        from .hosts import HostStep

        return HostStep(self)

    # ------------------------------------------------------------------ the run

    def execute(self) -> Outcome:
        """Run the units (after a resume: those not finished yet, or the rollback that was
        under way), then `finally`."""
        outcome: Outcome | None = None
        try:
            outcome = self.resume_outcome() or self.run_units(self.progress.done)
        except Interrupted:
            self.rt.display.stop_spinner()
            return Outcome("interrupted", self._current_name(), "interrupted by a signal",
                           self.ran)
        except RecordError as error:
            # Nothing may run unrecorded: no rollback, no finally; the run stops here and
            # can be resumed once the record can be written again.
            self.rt.display.stop_spinner()
            return Outcome("failed", self._current_name(), str(error), self.ran,
                           unrecorded=True)
        except Exception as error:  # noqa: BLE001 - a defect must still end the record
            # A bug in runbook itself must not leave a half-written record: the run ends as
            # failed (resumable), and `finally` still gets to clean up.
            self.rt.display.stop_spinner()
            outcome = Outcome("failed", self._current_name(),
                              f"internal error: {type(error).__name__}: {error}")
        if outcome.status in ("paused",):
            outcome.steps = self.ran
            return outcome
        try:
            self.run_finally(outcome)
        except Interrupted:
            return Outcome("interrupted", outcome.failed_step, "interrupted in finally", self.ran)
        except RecordError as error:
            return Outcome("failed", outcome.failed_step, str(error), self.ran, unrecorded=True)
        except Exception as error:  # noqa: BLE001 - as above, for `finally`
            outcome.status = "failed" if outcome.status == "succeeded" else outcome.status
            outcome.reason = outcome.reason or f"internal error in finally: {error}"
        outcome.steps = self.ran
        return outcome

    def resume_outcome(self) -> Outcome | None:
        """A resumed run whose failure was already being handled never goes forward again:
        it finishes the rollback under way (LANGUAGE.md §7), or, when that rollback had
        finished, ends as it did."""
        pending = self.progress.rollback
        if pending is None:
            return None
        if not pending.finished:
            ok = self.finish_rollback(pending)
        else:
            ok = not pending.failed
        if pending.cause == "rejected":
            status = "rejected" if ok else "rollback_failed"
        else:
            status = "rolled_back" if ok else "rollback_failed"
        return Outcome(status, pending.trigger, pending.reason)

    def finish_rollback(self, pending: PendingRollback) -> bool:
        """Undo the steps a rollback had not finished, in its order; never one twice."""
        by_name = {step.name: step for step in self.ran}
        left = [by_name[name] for name in pending.steps
                if name not in pending.done and name in by_name]
        names = [step.name for step in left]
        trigger = by_name.get(pending.trigger) or StepRun(None, pending.trigger, "", "")
        self.rt.record("rollback_started", trigger=pending.trigger, steps=names, resumed=True,
                       cause=pending.cause, reason=pending.reason)
        self.rt.display.line(f"↺ resuming the rollback after {pending.trigger}: "
                             + (", ".join(names) if names else "nothing left to undo"),
                             "yellow")
        ok = not pending.failed
        for step in left:
            ok = self.undo(step, trigger) and ok
        self.rt.record("rollback_finished", trigger=pending.trigger, steps=pending.steps,
                       status="succeeded" if ok else "failed")
        self.rollback_failed = not ok
        return ok

    def add_ran(self, instance: StepRun) -> None:
        """Count an instance in the summary; a resumed run's retry replaces its failure."""
        with self._lock:
            if instance.name in self._ran_names:  # a retry: rebuild only then (long runbooks)
                self.ran = [step for step in self.ran if step.name != instance.name]
            self._ran_names.add(instance.name)
            self.ran.append(instance)

    def succeeded(self, instance: StepRun) -> None:
        """A step instance finished well: a rollback may undo it. A host's instance is
        added by its step once its batch is over, in order."""
        if instance.host is None:
            self.completed.append(instance)

    def _current_name(self) -> str | None:
        return self.ran[-1].name if self.ran else None

    def run_units(self, done: set[str]) -> Outcome:
        from_index = self.from_index()
        total = len(self.units)
        for index, unit in enumerate(self.units):
            number = f"{index + 1}/{total}"
            if from_index is not None and index < from_index and unit.kind != "gate":
                # Gates are not skipped: starting later must not bypass an approval.
                self.skip(unit, number, f"before --from {self.rt.options.from_step}: skipped "
                          "by the operator")
                continue
            if unit.kind == "gate":
                if unit.name.name in done:
                    continue
                verdict = self.gates.run(unit, number)
                if verdict == "paused":
                    return Outcome("paused", unit.name.name, f"waiting at gate {unit.name.name}")
                if verdict == "rejected":
                    return self.rejected(unit)
                continue
            if unit.kind == "step" and unit.on is not None:
                outcome = self.hosts.run(unit, number, done)
                if outcome is not None:
                    return outcome
                continue
            try:
                instances = self.from_instance(unit, self.instances(unit, number), number)
            except StepFailed as error:
                # The list of a `for` step could not be computed: the step fails as a whole.
                instance = StepRun(unit, unit.name.name, unit.name.name, number)
                self.unit_failed(instance, error.reason)
                outcome = self.on_failure(instance, error.reason)
                if outcome is not None:
                    return outcome
                continue
            for instance in instances:
                if instance.name in done:
                    continue
                failure = self.run_step(instance)
                if failure is None:
                    continue
                outcome = self.on_failure(instance, failure)
                if outcome is not None:
                    return outcome
        return Outcome("succeeded")

    def from_index(self) -> int | None:
        target = self.rt.options.from_step
        if target is None:
            return None
        for index, unit in enumerate(self.units):
            if unit.name.name == target or target.startswith(unit.name.name + "["):
                return index
        return None

    # ------------------------------------------------------------------ steps

    def instances(self, unit: n.Step, number: str) -> list[StepRun]:
        """A step, or one instance per item of a `for` step (`NAME[item]`)."""
        name = unit.name.name
        base = Frame(StepRun(unit, name, "", number), self.rt.module)
        if unit.loop_over is None:
            return [StepRun(unit, name, self.title(unit, base), number)]
        items = self.statements.value(unit.loop_over, base)
        var = unit.loop_var.name if unit.loop_var is not None else "item"
        if isinstance(items, Unknown):
            loop = {var: items}
            frame = Frame(StepRun(unit, f"{name}[…]", "", number, loop=loop), self.rt.module, loop)
            return [StepRun(unit, f"{name}[…]", self.title(unit, frame), number, loop=loop)]
        if not isinstance(items, list):
            raise StepFailed(f"`for` needs a list, got {self.rt.shown(items)}")
        if not items:
            # Nothing to run, but the record says so instead of leaving no trace.
            self.skip(unit, number, f"`for {var} in …` has no items")
            return []
        out: list[StepRun] = []
        for item, instance_name in zip(items, instance_names(name, items), strict=True):
            loop = {var: item}
            frame = Frame(StepRun(unit, instance_name, "", number, loop=loop), self.rt.module,
                          loop)
            out.append(StepRun(unit, instance_name, self.title(unit, frame), number, loop=loop,
                               of=f"{len(out) + 1}/{len(items)}"))
        self.check_fail_at(unit, out)
        if self._ran_names:
            # A resumed run's earlier instances come from the record, which does not say
            # which of how many they were: now that the list is known again, it does.
            places = {instance.name: instance.of for instance in out}
            for earlier in self.ran:
                if not earlier.of and earlier.name in places:
                    earlier.of = places[earlier.name]
        return out

    def check_fail_at(self, unit, instances: list[StepRun]) -> None:
        """`--fail-at NAME[item]` must name one of NAME's instances: a mistyped item must
        fail the step, never let a rollback drill run as a real deploy."""
        target = self.rt.options.fail_at
        if target is None or not target.startswith(unit.name.name + "["):
            return
        names = [i.name for i in instances]
        if target not in names:
            raise StepFailed(f"--fail-at {target}: {unit.name.name} has no such instance "
                             f"(instances: {', '.join(names)}); nothing was run")

    def from_instance(self, unit, instances: list[StepRun], number: str) -> list[StepRun]:
        """`--from NAME[item]`: the instances before that one are skipped by the operator."""
        target = self.rt.options.from_step
        if target is None or not target.startswith(unit.name.name + "["):
            return instances
        names = [i.name for i in instances]
        if target not in names:
            raise StepFailed(f"--from {target}: {unit.name.name} has no such instance "
                             f"(instances: {', '.join(names)}); nothing was run")
        start = names.index(target)
        for skipped in instances[:start]:
            self.skip_instance(skipped, f"before --from {target}: skipped by the operator")
        return instances[start:]

    def unit_failed(self, instance: StepRun, reason: str) -> None:
        """Record a step that failed before any attempt could start."""
        tolerated = self.policy(instance.unit) == "continue"
        instance.status = "tolerated" if tolerated else "failed"
        instance.status_reason = reason
        self.add_ran(instance)
        if self.rt.dry:
            self.rt.recorder.start(PlanStep(_plan_number(instance), instance.name,
                                            _kind(instance.unit), instance.title, "fails",
                                            reason))
            return
        self.rt.record("step_started", step=instance.name, title=instance.title, attempt=1)
        self.rt.record("step_finished", step=instance.name, title=instance.title, attempt=1,
                       status="failed", reason=reason, duration_ms=0,
                       **({"tolerated": True} if tolerated else {}))
        self.rt.display.step_finished(instance.name, instance.status, 0, self.rt.mask(reason))

    def title(self, unit, frame: Frame) -> str:
        try:
            return self.rt.evaluator(frame).render(unit.title)
        except EvalError:
            return unit.name.name

    def skip(self, unit, number: str, reason: str) -> None:
        name = unit.name.name
        instance = StepRun(unit, name, self.title(unit, Frame(StepRun(unit, name, "", number),
                                                              self.rt.module)), number)
        instance.status, instance.status_reason = "skipped", reason
        if self.rt.dry:
            self.rt.recorder.start(PlanStep(number.split("/")[0], name, _kind(unit),
                                            instance.title, "skipped", reason))
            return
        self.rt.record("step_started", step=name, title=instance.title, attempt=1)
        self.rt.record("step_finished", step=name, title=instance.title, attempt=1,
                       status="skipped", reason=reason, duration_ms=0)
        self.rt.display.step_finished(name, "skipped", 0, reason)
        self.add_ran(instance)

    def skip_instance(self, instance: StepRun, reason: str) -> None:
        """Record one instance of a `for` step as skipped."""
        instance.status, instance.status_reason = "skipped", reason
        if self.rt.dry:
            self.rt.recorder.start(PlanStep(_plan_number(instance), instance.name,
                                            _kind(instance.unit), instance.title, "skipped",
                                            reason))
            return
        self.rt.record("step_started", step=instance.name, title=instance.title, attempt=1)
        self.rt.record("step_finished", step=instance.name, title=instance.title, attempt=1,
                       status="skipped", reason=reason, duration_ms=0)
        self.rt.display.step_finished(instance.name, "skipped", 0, reason)
        self.add_ran(instance)

    def run_step(self, instance: StepRun) -> str | None:
        """Run one step instance with its retries; the failure reason, or None on success."""
        unit = instance.unit
        frame = Frame(instance, self.rt.module, dict(instance.loop))
        when = self.condition(unit.when, frame) if unit.when is not None else True
        if when is False:
            reason = f"when {frame.source(unit.when)} is false"
            instance.status, instance.status_reason = "skipped", reason
            if self.rt.dry:
                self.plan_step(instance, frame, "skipped", reason)
                return None
            self.rt.record("step_started", step=instance.name, title=instance.title, attempt=1)
            self.rt.record("step_finished", step=instance.name, title=instance.title, attempt=1,
                           status="skipped", reason=reason, duration_ms=0)
            self.rt.display.step_finished(instance.name, "skipped", 0, reason)
            self.add_ran(instance)
            return None
        if self.rt.dry:
            status = "decided at run time" if isinstance(when, Unknown) else "will run"
            reason = f"when {frame.source(unit.when)}" if isinstance(when, Unknown) else ""
            return self.plan_step(instance, frame, status, reason)
        return self.attempts(instance, frame)

    def attempts(self, instance: StepRun, frame: Frame) -> str | None:
        unit = instance.unit
        try:
            count, pause, backoff = self.retry_settings(unit, frame)
        except StepFailed as error:
            self.unit_failed(instance, error.reason)
            return error.reason
        self.add_ran(instance)
        failure = ""
        for attempt in range(1, count + 2):
            started = time.monotonic()
            self.rt.sync()
            self.rt.record("step_started", step=instance.name, title=instance.title,
                           attempt=attempt, loop=_json_loop(instance.loop),
                           **_host_fields(instance))
            self.rt.display.step_started(instance.number, instance.name, instance.title,
                                         instance.place)
            instance.unreachable = False
            try:
                self.prepare(instance, frame)
                self.body(instance, frame)
                # A signal that arrived while the last statement finished still stops the
                # run here: a step never counts as succeeded after Ctrl-C.
                self.rt.interrupts.check()
                if self.rt.options.fail_at in (instance.name, unit.name.name):
                    # After the body, as a real failure at the end of the step would be:
                    # the step's own undo then has something to undo.
                    raise StepFailed("failure injected by --fail-at")
            except (Interrupted, RecordError):
                instance.status = "interrupted"
                instance.duration_ms = int((time.monotonic() - started) * 1000)
                raise
            except Exception as error:  # noqa: BLE001
                # Anything unexpected fails the step like any failure, so the step's policy
                # (continue, rollback) still applies.
                failure = as_failure(error).reason
                instance.duration_ms = int((time.monotonic() - started) * 1000)
                last = attempt > count
                tolerated = last and self.policy(unit) == "continue"
                self.rt.record("step_finished", step=instance.name, title=instance.title,
                               attempt=attempt, status="failed", reason=failure,
                               duration_ms=instance.duration_ms,
                               **({"tolerated": True} if tolerated else {}),
                               **({"unreachable": True} if instance.unreachable else {}))
                self.rt.display.step_finished(
                    instance.name, "tolerated" if tolerated else "failed",
                    instance.duration_ms, self.rt.mask(failure))
                if not last:
                    self.rt.display.line(f"    retrying in {Duration(int(pause * 1000))} "
                                         f"(attempt {attempt + 1} of {count + 1})", "yellow")
                    self.rt.interrupts.sleep(pause)
                    pause *= backoff
                    continue
                instance.status = "tolerated" if tolerated else "failed"
                instance.status_reason = failure
                return failure
            instance.duration_ms = int((time.monotonic() - started) * 1000)
            instance.status, instance.status_reason = "succeeded", ""
            self.rt.record("step_finished", step=instance.name, title=instance.title,
                           attempt=attempt, status="succeeded", reason="",
                           duration_ms=instance.duration_ms)
            self.rt.display.step_finished(instance.name, "succeeded", instance.duration_ms)
            self.succeeded(instance)
            return None
        return failure

    def retry_settings(self, unit, frame: Frame) -> tuple[int, float, float]:
        if unit.retry is None:
            return 0, 0.0, 1.0
        count = self.statements.value(unit.retry.count, frame)
        every = self.statements.value(unit.retry.every, frame) if unit.retry.every else None
        backoff = self.statements.value(unit.retry.backoff, frame) if unit.retry.backoff else 1
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise StepFailed(f"`retry` needs a whole number, got {self.rt.shown(count)}")
        pause = every.seconds if isinstance(every, Duration) else 0.0
        return count, pause, float(backoff) if isinstance(backoff, (int, float)) else 1.0

    def prepare(self, instance: StepRun, frame: Frame) -> None:
        """Evaluate the step's env, dir and timeout for this attempt."""
        unit = instance.unit
        instance.env = {}
        for var in unit.env or []:
            text = to_text(self.statements.value(var.value, frame))
            # `env { T = upper(token) }`: a value computed from a secret is masked too.
            self.rt.scope.mask_derived(var.value, text, frame)
            instance.env[var.name.name] = text
        cwd = self.rt.base_dir
        if unit.dir is not None:
            directory = self.statements.text(unit.dir, frame)
            cwd = cwd / directory
            # On a host, `dir` is taken as written: relative to the login directory.
            instance.remote_dir = directory if instance.host is not None else None
        instance.cwd = cwd
        instance.deadline = None
        if unit.timeout is not None:
            limit = self.statements.duration(unit.timeout, frame, "timeout")
            instance.deadline = self.rt.clock.monotonic() + limit.seconds

    def body(self, instance: StepRun, frame: Frame) -> None:
        unit = instance.unit
        if unit.kind == "check_step":
            within = self.statements.duration(unit.within, frame, "within") if unit.within \
                else None
            every = self.statements.duration(unit.every, frame, "every") if unit.every else None
            self.statements.checks.run_check(instance.title, unit.probe, unit.expects, within,
                                             every, frame)
        else:
            self.statements.block(unit.body, frame)

    def condition(self, expr, frame: Frame):
        value = self.statements.value(expr, frame)
        if isinstance(value, (bool, Unknown)):
            return value
        raise StepFailed(f"`when` needs a bool, got {self.rt.shown(value)}")

    # ------------------------------------------------------------------ dry-run of a step

    def plan_step(self, instance: StepRun, frame: Frame, status: str, reason: str) -> str | None:
        unit = instance.unit
        entry = PlanStep(_plan_number(instance), instance.name, _kind(unit),
                         self.rt.mask(instance.title), status, reason)
        self.rt.recorder.start(entry)
        entry.attributes = self.plan_attributes(unit, frame)
        entry.on_failure = self.failure_plan(instance)
        if status == "skipped":
            return None
        try:
            self.prepare_plan(instance, frame)
            self.body(instance, frame)
        except StepFailed as error:
            # Known values already make this step fail: the plan says so, then follows the
            # step's failure policy like the run would.
            entry.status, entry.reason = "fails", error.reason
            instance.status, instance.status_reason = "failed", error.reason
            return error.reason
        if self.rt.options.fail_at in (instance.name, unit.name.name):
            entry.status = "fails (--fail-at)"
            entry.reason = "failure injected by --fail-at"
            instance.status, instance.status_reason = "failed", entry.reason
            return entry.reason
        instance.status = "succeeded"
        self.succeeded(instance)
        return None

    def prepare_plan(self, instance: StepRun, frame: Frame) -> None:
        unit = instance.unit
        instance.env = {}
        instance.cwd = self.rt.base_dir
        if unit.dir is not None:
            instance.cwd = self.rt.base_dir / self.statements.text(unit.dir, frame)
            if instance.host is not None:
                instance.remote_dir = self.statements.text(unit.dir, frame)

    def plan_attributes(self, unit, frame: Frame) -> dict:
        attrs: dict = {}
        host = frame.step.host
        if host is not None:
            attrs["host"] = f"{describe_host(host)} (batch {frame.step.batch})"
        if unit.timeout is not None:
            attrs["timeout"] = to_text(self.statements.value(unit.timeout, frame))
        if unit.retry is not None:
            parts = [f"{to_text(self.statements.value(unit.retry.count, frame))} more attempts"]
            if unit.retry.every is not None:
                parts.append(f"every {to_text(self.statements.value(unit.retry.every, frame))}")
            if unit.retry.backoff is not None:
                factor = self.statements.value(unit.retry.backoff, frame)
                parts.append(f"backoff ×{to_text(factor)}")
            attrs["retry"] = ", ".join(parts)
        if unit.env:
            attrs["env"] = ", ".join(var.name.name for var in unit.env)
        if unit.dir is not None:
            attrs["dir"] = self.statements.text(unit.dir, frame)
        if unit.kind == "check_step" and unit.within is not None:
            attrs["polling"] = (f"within {to_text(self.statements.value(unit.within, frame))} "
                                f"every {to_text(self.statements.value(unit.every, frame))}")
        return attrs

    def failure_plan(self, instance: StepRun) -> dict:
        """What unwinds if this step fails: its policy and the undo blocks, in order."""
        if instance.host is not None:
            # A host's failure counts against the step's budget; the step's own entry says
            # what follows when the budget is spent.
            return {"policy": f"counts against max_failures of {instance.unit.name.name}"}
        policy = self.policy(instance.unit)
        plan: dict = {"policy": policy}
        if policy == "rollback":
            undo = []
            if undo_block(instance.unit) is not None:
                undo.append(f"{instance.name} (its own undo)")
            undo.extend(done.name for done in reversed(self.completed)
                        if undo_block(done.unit) is not None)
            plan["undo"] = undo
        return plan

    # ------------------------------------------------------------------ failure and rollback

    def policy(self, unit) -> str:
        if unit.on_failure is not None:
            return unit.on_failure.policy
        return self.ast.default_policy

    def on_failure(self, instance: StepRun, reason: str,
                   own: list[StepRun] | None = None) -> Outcome | None:
        """Apply the step's failure policy. `own` are the instances of a step on hosts to
        undo first (instead of the step's own undo block)."""
        policy = self.policy(instance.unit)
        if policy == "continue":
            # Tolerated: the run's status stays as it is (LANGUAGE.md §7).
            instance.status = "tolerated"
            self.tolerated.append(instance)
            return None
        if policy == "abort":
            return Outcome("failed", instance.name, reason)
        ok = self.rollback(instance, include_trigger=True, reason=reason, own=own)
        return Outcome("rolled_back" if ok else "rollback_failed", instance.name, reason)

    def rejected(self, gate: n.Gate) -> Outcome:
        outcome = Outcome("rejected", gate.name.name, f"gate {gate.name.name} was not approved")
        if self.ast.default_policy == "rollback" and self.completed:
            trigger = StepRun(gate, gate.name.name, "", "")
            if not self.rollback(trigger, include_trigger=False, cause="rejected",
                                 reason=outcome.reason):
                outcome.status = "rollback_failed"
        return outcome

    def rollback(self, trigger: StepRun, include_trigger: bool, cause: str = "failed",
                 reason: str = "", own: list[StepRun] | None = None) -> bool:
        """Undo the failed step (for a step on hosts: each host that ran, newest batch
        first), then every completed step in reverse order (a saga)."""
        plan: list[StepRun] = []
        if own is not None:
            plan.extend(step for step in own if undo_block(step.unit) is not None)
        elif include_trigger and undo_block(trigger.unit) is not None:
            plan.append(trigger)
        planned = {id(step) for step in plan}
        plan.extend(done for done in reversed(self.completed)
                    if undo_block(done.unit) is not None and id(done) not in planned)
        names = [step.name for step in plan]
        self.rt.record("rollback_started", trigger=trigger.name, steps=names, cause=cause,
                       reason=reason)
        if not self.rt.dry:
            self.rt.display.line(f"↺ rolling back after {trigger.name}: "
                                 + (", ".join(names) if names else "nothing to undo"), "yellow")
        ok = True
        for step in plan:
            ok = self.undo(step, trigger) and ok
        self.rt.record("rollback_finished", trigger=trigger.name, steps=names,
                       status="succeeded" if ok else "failed")
        self.rollback_failed = not ok
        return ok

    def undo(self, step: StepRun, trigger: StepRun) -> bool:
        body = undo_block(step.unit)
        frame = Frame(step, self.rt.module, dict(step.loop), phase="rollback")
        if step.host is not None and step.remote_dir is None and step.unit.dir is not None:
            # A resumed run's instance: its `dir` on the host, as the step computed it.
            try:
                step.remote_dir = self.statements.text(step.unit.dir, frame)
            except StepFailed:
                step.remote_dir = None
        if self.rt.dry:
            entry = PlanStep("", step.name, "undo", f"undo {step.name}")
            self.rt.recorder.start(entry, "rollback")
            self.statements.block(body, frame)
            return True
        started = time.monotonic()
        self.rt.record("step_started", step=step.name, title=f"undo {step.name}", attempt=1,
                       phase="rollback", **_host_fields(step))
        self.rt.display.step_started("undo", step.name, f"undo ({trigger.name} failed)")
        try:
            step.deadline = None
            if step.unit.timeout is not None:
                limit = self.statements.duration(step.unit.timeout, frame, "timeout")
                step.deadline = self.rt.clock.monotonic() + limit.seconds
            self.statements.block(body, frame)
        except Interrupted:
            # The summary shows the undo cut short; a resume finishes it.
            step.status = "undo_interrupted"
            raise
        except RecordError:
            raise
        except Exception as failure:  # noqa: BLE001 - an undo that breaks is a failed undo
            error = as_failure(failure)
            ms = int((time.monotonic() - started) * 1000)
            self.rt.record("step_finished", step=step.name, title=f"undo {step.name}",
                           attempt=1, status="failed", reason=f"rollback failed: {error.reason}",
                           duration_ms=ms, phase="rollback")
            self.rt.display.step_finished(step.name, "failed", ms,
                                          self.rt.mask(f"rollback failed: {error.reason}"))
            step.status = "rollback_failed"
            return False
        ms = int((time.monotonic() - started) * 1000)
        self.rt.record("step_finished", step=step.name, title=f"undo {step.name}", attempt=1,
                       status="rolled_back", reason=f"undone after {trigger.name} failed",
                       duration_ms=ms, phase="rollback")
        self.rt.display.step_finished(step.name, "rolled_back", ms)
        if step.status == "succeeded":
            step.status = "rolled_back"
        return True

    # ------------------------------------------------------------------ finally

    def run_finally(self, outcome: Outcome) -> None:
        blocks = self.ast.of("finally")
        self.rt.scope.builtins["run_status"] = outcome.status
        self.rt.scope.builtins["failed_step"] = outcome.failed_step or ""
        if not blocks:
            return
        unit = n.Step.make(span=blocks[0].span, name=n.Ident.make(span=blocks[0].span,
                                                                  name="finally"),
                           title=n.String.make(span=blocks[0].span, parts=[]), body=[],
                           kind="step")
        instance = StepRun(unit, "finally", "finally", "finally", cwd=self.rt.base_dir)
        frame = Frame(instance, self.rt.module, phase="finally")
        if self.rt.dry:
            self.rt.recorder.start(PlanStep("", "finally", "finally",
                                            f"always runs last (run_status = {outcome.status})"),
                                   "final")
            for block in blocks:
                self.statements.block(block.body, frame)
            return
        started = time.monotonic()
        self.rt.record("step_started", step="finally", title="finally", attempt=1,
                       phase="finally")
        self.rt.display.step_started("finally", "finally", f"run {outcome.status}")
        try:
            for block in blocks:
                self.statements.block(block.body, frame)
        except (Interrupted, RecordError):
            raise
        except Exception as failure:  # noqa: BLE001 - a broken finally fails the run
            error = as_failure(failure)
            ms = int((time.monotonic() - started) * 1000)
            self.rt.record("step_finished", step="finally", title="finally", attempt=1,
                           status="failed", reason=error.reason, duration_ms=ms,
                           phase="finally")
            self.rt.display.step_finished("finally", "failed", ms, self.rt.mask(error.reason))
            if outcome.status == "succeeded":
                outcome.status, outcome.failed_step = "failed", "finally"
                outcome.reason = error.reason
            return
        ms = int((time.monotonic() - started) * 1000)
        self.rt.record("step_finished", step="finally", title="finally", attempt=1,
                       status="succeeded", reason="", duration_ms=ms, phase="finally")
        self.rt.display.step_finished("finally", "succeeded", ms)


def instance_names(name: str, items: list) -> list[str]:
    """The addresses of a `for` step's instances: `NAME[item]`, and for an item that repeats,
    its occurrence number (`deploy[a#2]`), so that no two instances share one."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for item in items:
        instance = f"{name}[{to_text(item)}]"
        seen[instance] = seen.get(instance, 0) + 1
        names.append(instance if seen[instance] == 1 else
                     f"{name}[{to_text(item)}#{seen[instance]}]")
    return names


def as_failure(error: Exception) -> StepFailed:
    """A StepFailed for any error: a defect fails its step instead of ending the program."""
    if isinstance(error, StepFailed):
        return error
    return StepFailed(f"internal error: {type(error).__name__}: {error}")


def _host_fields(instance: StepRun) -> dict:
    """What `step_started` says of a host's instance, for the reader and for resume."""
    if instance.host is None:
        return {}
    return {"host": instance.host.name, "batch": instance.batch,
            "position": instance.position, "hosts": instance.hosts}


def describe_host(host) -> str:
    """`web4` or `web4 (ssh deploy@10.0.0.4:2222)`: where a host's commands go."""
    ssh = host.ssh
    if host.connection == "local":
        return f"{host.name} (runs here: ansible_connection local)"
    if not (ssh.address or ssh.user or ssh.port):
        return host.name
    where = (f"{ssh.user}@" if ssh.user else "") + (ssh.address or host.name) + \
        (f":{ssh.port}" if ssh.port else "")
    return f"{host.name} (ssh {where})"


def _json_loop(loop: dict) -> dict | None:
    """A `for` step's item, recorded so that a resumed run can undo that instance."""
    if not loop:
        return None
    from ..evaluation.values import to_json

    return {k: to_json(v) for k, v in loop.items()} or None


def _kind(unit) -> str:
    return {"step": "step", "check_step": "check", "gate": "gate"}[unit.kind]


def base_dir_of(path: Path) -> Path:
    """Commands run in the runbook file's directory (like a Makefile's)."""
    return path.resolve().parent


def _plan_number(instance: StepRun) -> str:
    """The step's number in the plan; the instances of a `for` step are numbered within it
    (`3.1`, `3.2`, …)."""
    number = instance.number.split("/")[0]
    return f"{number}.{instance.of.split('/')[0]}" if instance.of else number
