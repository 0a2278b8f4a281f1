"""A step that runs on hosts (LANGUAGE.md §11): one instance per host, in batches, with an
error budget.

`HostStep` is a collaborator of the `Interpreter`. For `step NAME "Title" on HOSTS { … }` it
resolves the hosts (the inventory, `--limit`), makes one instance `NAME[host]` per host,
cuts them into batches in inventory order and runs each batch's instances at once (at most
`--forks` at a time), each through the interpreter's ordinary `run_step`: retries, `when`,
timeouts and records are those of any step. After each batch it counts the failures: once
they exceed `max_failures`, no new instance starts, those running finish, and the step
fails under its `on_failure` policy; otherwise it succeeds with its failures tolerated.

A dry-run walks the same path without connecting: it lists the batches and each host's
resolved commands.

Records (beyond each instance's own): `hosts_started` (the hosts, the batches, the budget),
`batch_started` before each batch, `hosts_finished` with the verdict. A resumed run reads
`hosts_finished`: failures a step tolerated are not run again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..errors import Interrupted, RecordError, StepFailed
from ..evaluation.values import Unknown
from ..targets.batches import (
    Share,
    ShareError,
    batch_size,
    describe_budget,
    exceeded,
    parse_share,
    split,
)
from .plan import PlanStep
from .runtime import Frame, StepRun, undo_block
from .targets import step_hosts

if TYPE_CHECKING:
    from .interpreter import Interpreter, Outcome


class HostStep:
    """Runs (or plans) the steps that run on hosts."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.it = interpreter
        self.rt = interpreter.rt
        # Set once the batch must not start another instance: the budget is spent, or the
        # run is being interrupted.
        self._halt = threading.Event()

    # ------------------------------------------------------------------ the step

    def run(self, unit, number: str, done: set[str]) -> Outcome | None:
        """Run one step on its hosts; an Outcome when the run must stop there."""
        it = self.it
        name = unit.name.name
        base = Frame(StepRun(unit, name, "", number), self.rt.module)
        try:
            instances = self.instances(unit, number, base)
            if instances is None:
                return None  # a dry-run whose hosts are only known at run time
            if not instances:
                it.skip(unit, number, f"--limit {self.rt.options.limit} selects none of its "
                        "hosts" if self.rt.options.limit else "it names no host")
                return None
            size, budget = self.shares(unit, base, len(instances))
            it.check_fail_at(unit, instances)
            runnable = it.from_instance(unit, instances, number)
        except StepFailed as error:
            whole = StepRun(unit, name, it.title(unit, base), number)
            it.unit_failed(whole, error.reason)
            return it.on_failure(whole, error.reason)
        batches = split(instances, size)
        for index, batch in enumerate(batches, 1):
            for instance in batch:
                instance.batch = index
        todo = {i.name for i in runnable if i.name not in done}
        header = self.started(unit, number, instances, batches, size, budget)
        not_started: list[StepRun] = []
        self._halt.clear()
        for index, batch in enumerate(batches, 1):
            now = [i for i in batch if i.name in todo]
            if not now:
                continue
            if self._halt.is_set():
                not_started.extend(now)
                continue
            self.batch_started(unit, index, len(batches), now)
            not_started.extend(self.run_batch(now, budget, len(instances)))
            # What a rollback unwinds, in batch order and inventory order within a batch
            # (the hosts of a batch finish in any order).
            it.completed.extend(i for i in now if i.status == "succeeded")
            if exceeded(self.failures(instances), budget, len(instances)):
                self._halt.set()
        return self.finished(unit, number, instances, batches, budget, not_started, header)

    def instances(self, unit, number: str, base: Frame) -> list[StepRun] | None:
        """One instance per host, in inventory order (None: hosts known at run time only)."""
        value = self.it.statements.value(unit.on, base)
        if isinstance(value, Unknown):
            self.it.skip(unit, number, f"its hosts are known at run time ({value})")
            return None
        hosts = step_hosts(self.rt, unit, value)
        name = unit.name.name
        out = []
        for position, host in enumerate(hosts, 1):
            instance = StepRun(unit, f"{name}[{host.name}]", "", number, host=host,
                               bindings={"host": host.name, "vars": dict(host.vars)},
                               position=position, hosts=len(hosts))
            instance.title = self.it.title(unit, Frame(instance, self.rt.module))
            out.append(instance)
        return out

    def shares(self, unit, frame: Frame, total: int) -> tuple[int, Share | None]:
        """The batch size and the error budget, as this step's hosts make them."""
        found: list[Share | None] = []
        for expr, what, least in ((unit.batch, "batch", 1), (unit.max_failures,
                                                            "max_failures", 0)):
            if expr is None:
                found.append(None)
                continue
            value = self.it.statements.value(expr, frame)
            if isinstance(value, Unknown):
                raise StepFailed(f"`{what}` is only known at run time ({value})")
            try:
                found.append(parse_share(value, what, least=least))
            except ShareError as error:
                raise StepFailed(str(error)) from None
        return batch_size(found[0], total), found[1]

    # ------------------------------------------------------------------ batches

    def run_batch(self, batch: list[StepRun], budget: Share | None,
                  total: int) -> list[StepRun]:
        """Run a batch's instances (at once, at most --forks); those never started."""
        forks = self.rt.targets.forks if self.rt.targets is not None else 10
        if self.rt.dry or forks == 1 or len(batch) == 1:
            for position, instance in enumerate(batch):
                if self._halt.is_set() and not self.rt.dry:
                    return batch[position:]
                self.run_instance(instance, budget, total)
            return []
        never: list[StepRun] = []
        problems: list[BaseException] = []
        lock = threading.Lock()

        def work(instance: StepRun) -> None:
            if self._halt.is_set() or self.rt.interrupts.event.is_set():
                with lock:
                    never.append(instance)
                return
            try:
                self.run_instance(instance, budget, total)
            except (Interrupted, RecordError) as error:
                self._halt.set()
                with lock:
                    problems.append(error)

        # Imported here: most runs have no step on hosts (and logging comes with it).
        from concurrent.futures import ThreadPoolExecutor, wait

        self.rt.display.parallel = True
        try:
            with ThreadPoolExecutor(max_workers=min(forks, len(batch)),
                                    thread_name_prefix="host") as pool:
                futures = [pool.submit(work, instance) for instance in batch]
                pending = set(futures)
                while pending:
                    # Short waits: the main thread must stay free for Ctrl-C's handler.
                    _, pending = wait(pending, timeout=0.2)
        finally:
            self.rt.display.parallel = False
        for future in futures:
            future.result()  # a defect in a thread is a defect here too
        if problems:
            raise next((p for p in problems if isinstance(p, RecordError)), problems[0])
        order = {id(i): n for n, i in enumerate(batch)}
        return sorted(never, key=lambda i: order[id(i)])

    def run_instance(self, instance: StepRun, budget: Share | None, total: int) -> None:
        """One host's instance, through the interpreter's ordinary step."""
        self.it.run_step(instance)
        if instance.status == "failed" and exceeded(self.failures_of(instance), budget, total):
            # No new host starts once the budget is spent; those running finish.
            self._halt.set()

    def failures_of(self, instance: StepRun) -> int:
        """Failed instances of `instance`'s step so far."""
        return sum(1 for i in self.it.ran if i.unit is instance.unit and i.status == "failed")

    @staticmethod
    def failures(instances: list[StepRun]) -> int:
        return sum(1 for i in instances if i.status == "failed")

    # ------------------------------------------------------------------ records and plan

    def started(self, unit, number: str, instances: list[StepRun],
                batches: list[list[StepRun]], size: int, budget: Share | None):
        """Say which hosts run in which batches (the plan's header entry, in a dry-run)."""
        name = unit.name.name
        forks = self.rt.targets.forks if self.rt.targets is not None else 10
        groups = [[i.host.name for i in batch] for batch in batches]
        budget_text = describe_budget(budget, len(instances))
        if self.rt.dry:
            title = self.rt.module.source.text[unit.title.span.start:unit.title.span.end]
            entry = PlanStep(number.split("/")[0], name, "on", title.strip('"'),
                             attributes={"hosts": f"{len(instances)} in {len(batches)} "
                                         f"batch{'es' if len(batches) != 1 else ''} of "
                                         f"{size}, {budget_text}, at most {forks} at a time"})
            for index, hosts in enumerate(groups, 1):
                entry.attributes[f"batch {index}"] = ", ".join(hosts)
            self.rt.recorder.start(entry)
            entry.on_failure = self.failure_plan(unit)
            return entry
        self.rt.record("hosts_started", step=name, hosts=[i.host.name for i in instances],
                       batches=groups, batch_size=size,
                       max_failures=str(budget) if budget is not None else "0", forks=forks)
        self.rt.display.line(f"▶ [{number}] {name} on {len(instances)} host"
                             f"{'s' if len(instances) != 1 else ''}: {len(batches)} batch"
                             f"{'es' if len(batches) != 1 else ''} of {size}, {budget_text}",
                             "bold cyan")
        return None

    def batch_started(self, unit, index: int, count: int, batch: list[StepRun]) -> None:
        names = [i.host.name for i in batch]
        if self.rt.dry:
            return
        self.rt.record("batch_started", step=unit.name.name, batch=index, batches=count,
                       hosts=names)
        self.rt.display.line(f"  batch {index}/{count}: {', '.join(names)}", "cyan")

    def failure_plan(self, unit) -> dict:
        """What unwinds when more hosts fail than the step tolerates."""
        plan: dict = {"policy": self.it.policy(unit)}
        if plan["policy"] == "rollback":
            undo = []
            if undo_block(unit) is not None:
                undo.append(f"{unit.name.name} on each host that ran (newest batch first)")
            undo.extend(done.name for done in reversed(self.it.completed)
                        if undo_block(done.unit) is not None)
            plan["undo"] = undo
        return plan

    def finished(self, unit, number: str, instances: list[StepRun],
                 batches: list[list[StepRun]], budget: Share | None,
                 not_started: list[StepRun], header) -> Outcome | None:
        """The verdict: the step succeeds (failures tolerated) or fails under its policy."""
        it = self.it
        name = unit.name.name
        total = len(instances)
        failed = [i for i in instances if i.status == "failed"]
        over = exceeded(len(failed), budget, total)
        policy = it.policy(unit)
        status = "succeeded" if not over else "tolerated" if policy == "continue" else "failed"
        reason = self.describe(failed, total, budget, not_started) if failed else ""
        for instance in not_started:
            instance.status = "not_started"
            instance.status_reason = f"not started: {reason}"
            it.add_ran(instance)
        if status != "failed":
            for instance in failed:
                instance.status = "tolerated"
        if self.rt.dry:
            if header is not None and reason:
                header.status = "fails" if over else "will run"
                header.reason = reason
        else:
            self.rt.record(
                "hosts_finished", step=name, status=status, reason=reason or None,
                hosts=total, succeeded=[i.host.name for i in instances
                                        if i.status == "succeeded"],
                failed=[i.host.name for i in failed],
                unreachable=[i.host.name for i in failed if i.unreachable],
                skipped=[i.host.name for i in instances if i.status == "skipped"],
                not_started=[i.host.name for i in not_started],
                max_failures=str(budget) if budget is not None else "0")
            self.show_verdict(name, status, total, failed, reason)
        if not over:
            return None
        whole = StepRun(unit, name, it.title(unit, Frame(StepRun(unit, name, "", number),
                                                         self.rt.module)), number)
        return it.on_failure(whole, reason, own=self.undo_order(batches))

    def show_verdict(self, name: str, status: str, total: int, failed: list[StepRun],
                     reason: str) -> None:
        if not failed:
            self.rt.display.line(f"✓ {name}: {total} host{'s' if total != 1 else ''} "
                                 "succeeded", "green")
        elif status == "succeeded":
            self.rt.display.line(f"⚠ {name}: {reason}: tolerated", "yellow")
        else:
            self.rt.display.line(self.rt.mask(f"✗ {name} {status} — {reason}"),
                                 "red" if status == "failed" else "yellow")

    @staticmethod
    def describe(failed: list[StepRun], total: int, budget: Share | None,
                 not_started: list[StepRun]) -> str:
        """`2 of 5 hosts failed (web3: unreachable, web4), more than max_failures 1; not
        started: web5`."""
        names = ", ".join(f"{i.host.name}: unreachable" if i.unreachable else i.host.name
                          for i in failed)
        over = exceeded(len(failed), budget, total)
        text = (f"{len(failed)} of {total} host{'s' if total != 1 else ''} failed ({names}), "
                f"{'more than' if over else 'within'} {describe_budget(budget, total)}")
        if not_started:
            text += "; not started: " + ", ".join(i.host.name for i in not_started)
        return text

    @staticmethod
    def undo_order(batches: list[list[StepRun]]) -> list[StepRun]:
        """The instances a rollback undoes: each host whose instance ran to its end (or
        failed after reaching the host), newest batch first, in reverse inventory order
        within a batch. An unreachable host is left alone: nothing ran there."""
        return [i for batch in reversed(batches) for i in reversed(batch)
                if i.status in ("succeeded", "failed", "tolerated") and not i.unreachable]
