"""Statements: run, http, check, watch, confirm, note, wait, set, fail, if, for, task calls.

One code path for both modes. In a real run each statement acts and records; in a dry-run
(`rt.dry`) the same walk adds what it would do to the plan, captures become `Unknown`, and a
condition that depends on one is planned both ways as "decided at run time".
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from functools import cached_property

from ..digest import sha256_hex
from ..errors import StepFailed
from ..evaluation.values import Duration, Unknown, to_json, to_text
from ..hints import TYPE_CHECKING
from ..syntax import nodes as n
from ..syntax.loader import Module
from .command import command_failure, run_command
from .runtime import Frame, Runtime

if TYPE_CHECKING:
    from .checks import Checks
    from .http import Requests

# Deeper task calls are a runaway recursion, not a procedure.
MAX_TASK_DEPTH = 64
# A variable's value is recorded whole up to this size (as JSON), else by size and digest.
RECORDED_VALUE_LIMIT = 64 << 10


class Statements:
    """Executes statement lists within a Frame."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._asking = threading.Lock()

    # HTTP and checks are loaded by the first statement that needs them.
    @cached_property
    def requests(self) -> Requests:
        from .http import Requests

        return Requests(self.rt)

    @cached_property
    def checks(self) -> Checks:
        from .checks import Checks

        return Checks(self.rt, self.requests)

    def block(self, statements, frame: Frame) -> None:
        """Run statements in order; the first failure propagates."""
        for statement in statements or []:
            self.rt.interrupts.check()
            getattr(self, f"exec_{statement.kind}")(statement, frame)

    def value(self, expr, frame: Frame):
        """Evaluate, turning evaluation errors into a step failure that says where."""
        return self.rt.value(expr, frame)

    def text(self, string: n.String, frame: Frame, quote: bool = False) -> str:
        """Render a string (shell-quoted interpolations with `quote`)."""
        return self.rt.text(string, frame, quote)

    def duration(self, expr, frame: Frame, what: str):
        """A duration-valued expression, else the step fails."""
        return self.rt.duration(expr, frame, what)

    def plan(self, frame: Frame, kind: str, **details) -> None:
        """Dry-run: add what this statement would do to the plan."""
        self.rt.plan(frame, kind, **details)

    def exec_check(self, st: n.CheckStatement, frame: Frame) -> None:
        self.checks.exec_check(st, frame)

    def exec_watch(self, st: n.Watch, frame: Frame) -> None:
        self.checks.exec_watch(st, frame)

    def assign(self, name: str, value, frame: Frame, tainted: bool) -> None:
        """Set a variable and record it (masked when it derives from a secret): run-wide,
        or, in a step on hosts, for that host's instance (the record names the host)."""
        self.rt.scope.bind(frame, name, value)
        host = frame.step.host
        where = {"host": host.name} if host is not None else {}
        if tainted:
            self.rt.scope.tainted.add(name)
            text = to_text(value)
            if len(text) >= 4:
                self.rt.masker.add(text)
        elif host is None:
            # Not for a host's instance: the hosts of a batch share the name, and another
            # host's value may derive from a secret.
            self.rt.scope.tainted.discard(name)
        if tainted:
            self.rt.record("variable_set", name=name, value="***", step=frame.step.name,
                           **where)
            return
        shown = to_json(value)
        encoded = json.dumps(shown, ensure_ascii=False, default=str).encode()
        if len(encoded) <= RECORDED_VALUE_LIMIT:
            self.rt.record("variable_set", name=name, value=shown, step=frame.step.name,
                           **where)
            return
        # A huge value (a 25 MB `into`) would make one huge line in the record: the record
        # keeps its size and digest instead, and a resumed run cannot restore it.
        self.rt.record("variable_set", name=name, value=None, step=frame.step.name,
                       too_large={"bytes": len(encoded),
                                  "sha256": sha256_hex(encoded)}, **where)

    # ------------------------------------------------------------------ simple statements

    def exec_run(self, st: n.Run, frame: Frame) -> None:
        command = self.text(st.command, frame, quote=True)
        if self.rt.dry:
            self.plan(frame, "run", command=self.rt.mask(command),
                      into=st.into.name if st.into else None)
            if st.into is not None:
                self.rt.scope.bind(frame, st.into.name, self.rt.scope.placeholder(
                    st.into.name, f"captured by `run … into` in step {frame.step.name}"))
            return
        result = run_command(self.rt, command, frame, capture=st.into is not None)
        if result.exit_code != 0:
            raise StepFailed(command_failure(self.rt, result, command))
        if st.into is not None:
            captured = (result.captured or "").strip()
            tainted = self.rt.scope.is_tainted(st.command, frame) or "***" in captured
            self.assign(st.into.name, captured, frame, tainted)
            self.rt.display.captured(st.into.name, "***" if tainted else captured,
                                     *_instance(frame))

    def exec_http(self, st: n.Http, frame: Frame) -> None:
        response = self.requests.request(st, frame, strict=True)
        if st.into is not None:
            if self.rt.dry:
                self.rt.scope.bind(frame, st.into.name, self.rt.scope.placeholder(
                    st.into.name, f"the response of `http … into` in step {frame.step.name}"))
            else:
                self.assign(st.into.name, response, frame, False)
                self.rt.display.captured(st.into.name, _response_text(response),
                                         *_instance(frame))

    def exec_confirm(self, st: n.Confirm, frame: Frame) -> None:
        question = self.text(st.question, frame)
        if self.rt.dry:
            self.plan(frame, "confirm", question=self.rt.mask(question))
            return
        answer, method = self.ask(question)
        self.rt.record("confirm_answered", step=frame.step.name, text=question,
                       answer="yes" if answer else "no", method=method,
                       approver=self.rt.options.operator)
        if not answer:
            raise StepFailed(f"not confirmed: {question}")

    def ask(self, question: str) -> tuple[bool, str]:
        """Yes/no from the operator: --yes, else the terminal, else a failure naming --yes.
        The hosts of a batch ask one at a time."""
        with self._asking:
            return self._ask(question)

    def _ask(self, question: str) -> tuple[bool, str]:
        if self.rt.options.yes:
            self.rt.display.line(f"    ? {self.rt.mask(question)} yes (--yes)")
            return True, "flag"
        if not self.rt.options.interactive:
            raise StepFailed(f"confirm {question!r} needs an answer: no terminal to ask on; "
                             "pass --yes to answer yes")
        self.rt.display.stop_spinner()
        while True:
            sys.stderr.write(f"    ? {self.rt.mask(question)} [y/N] ")
            sys.stderr.flush()
            line = self.rt.interrupts.readline(sys.stdin)
            if not line:
                return False, "terminal"
            answer = line.strip().lower()
            if answer in ("y", "yes"):
                return True, "terminal"
            if answer in ("", "n", "no"):
                return False, "terminal"

    def exec_note(self, st: n.Note, frame: Frame) -> None:
        text = self.text(st.text, frame)
        if self.rt.dry:
            self.plan(frame, "note", text=self.rt.mask(text))
            return
        # A multi-line note (release notes, manual instructions) stays under its marker.
        shown = self.rt.mask(text).replace("\n", "\n      ")
        self.rt.display.line(f"    ✎ {shown}", "italic")
        self.rt.record("note", step=frame.step.name, text=text, phase=frame.phase)

    def exec_wait(self, st: n.Wait, frame: Frame) -> None:
        duration = self.duration(st.duration, frame, "wait")
        if self.rt.dry:
            self.plan(frame, "wait", duration=str(duration))
            return
        seconds = duration.seconds if hasattr(duration, "seconds") else 0
        end = time.monotonic() + seconds
        self.rt.display.line(f"    ⏳ waiting {duration}")
        while True:
            left = end - time.monotonic()
            deadline_left = self.rt.time_left(frame)
            if deadline_left is not None and deadline_left < left:
                self.rt.interrupts.sleep(max(0.0, deadline_left))
                raise StepFailed(f"timed out during `wait {duration}`")
            if left <= 0:
                self.rt.display.countdown(None)
                return
            whole = Duration(int(math.ceil(left)) * 1000)
            self.rt.display.countdown(f"waiting {duration}: {whole} left")
            self.rt.interrupts.sleep(min(left, 1.0))

    def exec_set(self, st: n.Set, frame: Frame) -> None:
        value = self.value(st.value, frame)
        if self.rt.dry:
            self.plan(frame, "set", name=st.name.name, value=self.rt.mask(to_text(value)))
            self.rt.scope.bind(frame, st.name.name, value)
            return
        self.assign(st.name.name, value, frame, self.rt.scope.is_tainted(st.value, frame))

    def exec_fail(self, st: n.Fail, frame: Frame) -> None:
        message = self.text(st.message, frame)
        if self.rt.dry:
            self.plan(frame, "fail", message=self.rt.mask(message))
            return
        raise StepFailed(message)

    def exec_expect(self, st: n.Expect, frame: Frame) -> None:
        raise StepFailed(f"line {st.span.line}: `expect` outside a check or watch")

    # ------------------------------------------------------------------ control flow

    def exec_if(self, st: n.If, frame: Frame) -> None:
        for branch in st.branches:
            condition = self.value(branch.condition, frame)
            if isinstance(condition, Unknown):
                self.plan_branches(st, frame)
                return
            if not isinstance(condition, bool):
                raise StepFailed(f"line {branch.condition.span.line}: `if` needs a bool, got "
                                 f"{self.rt.shown(condition)}")
            if condition:
                self.block(branch.body, frame)
                return
        self.block(st.otherwise, frame)

    def plan_branches(self, st: n.If, frame: Frame) -> None:
        """Dry-run of an `if` whose condition is only known at run time: plan each arm."""
        inner = frame.inner()
        for index, branch in enumerate(st.branches):
            word = "if" if index == 0 else "else if"
            self.plan(frame, "branch", condition=f"{word} {frame.source(branch.condition)}"
                      " (decided at run time)")
            self.block(branch.body, inner)
        if st.otherwise is not None:
            self.plan(frame, "branch", condition="else (decided at run time)")
            self.block(st.otherwise, inner)

    def exec_for(self, st: n.For, frame: Frame) -> None:
        items = self.value(st.iterable, frame)
        if isinstance(items, Unknown):
            self.plan(frame, "for", var=st.var.name, over=f"{items} (known at run time)")
            inner = frame.inner({st.var.name: items})
            self.block(st.body, inner)
            return
        if not isinstance(items, list):
            raise StepFailed(f"line {st.span.line}: `for` needs a list, got {self.rt.shown(items)}")
        for item in items:
            inner = frame.inner({st.var.name: item})
            if self.rt.dry:
                self.plan(frame, "for", var=st.var.name, item=self.rt.mask(to_text(item)))
            self.block(st.body, inner)

    def exec_task_call(self, st: n.TaskCall, frame: Frame) -> None:
        module, task = self.find_task(st, frame)
        values = {}
        tainted = set()
        for arg in st.args:
            values[arg.name.name] = self.value(arg.value, frame)
            if self.rt.scope.is_tainted(arg.value, frame):
                tainted.add(arg.name.name)
        if frame.depth >= MAX_TASK_DEPTH:
            raise StepFailed(f"task calls nest more than {MAX_TASK_DEPTH} deep at "
                             f"`{st.qualified()}`: is a task calling itself?")
        task_frame = Frame(frame.step, module, {}, frame.phase, frame.depth + 1)
        for param in task.params:
            if param.name.name not in values:
                values[param.name.name] = self.value(param.default, task_frame)
        task_frame.locals = {**values, "__tainted__": tainted}
        if self.rt.dry:
            args = ", ".join(f"{k}: {self.rt.mask(to_text(v))}" for k, v in values.items())
            self.plan(frame, "task", call=f"{st.qualified()}({args})",
                      module=_import_path(frame.module, st))
        self.block(task.body, task_frame)

    def find_task(self, st: n.TaskCall, frame: Frame):
        module: Module | None = frame.module
        if st.namespace is not None:
            module = frame.module.imports.get(st.namespace.name)
        if module is None or module.ast is None:
            raise StepFailed(f"module `{st.namespace.name if st.namespace else '?'}` is not "
                             "loaded")
        for task in module.ast.of("task"):
            if task.name.name == st.name.name:
                return module, task
        raise StepFailed(f"unknown task `{st.qualified()}`")


def _import_path(module: Module, st: n.TaskCall) -> str | None:
    """The import path (`std/http`, `./lib.runbook`) of a call into an imported module; None
    for a task of the calling file itself (a plan folds calls into imports, not those)."""
    if st.namespace is None or module.ast is None:
        return None
    for imported in module.ast.of("import"):
        if imported.alias.name == st.namespace.name:
            return imported.path
    return None


def _response_text(response) -> str:
    """An `http … into` value in one line: its status and the size of its body."""
    if isinstance(response, dict):
        body = str(response.get("body", ""))
        return f"HTTP {response.get('status')}, {len(body.encode())} bytes of body"
    return to_text(response)


def _instance(frame: Frame) -> tuple[str, str | None]:
    """The step instance a statement runs in, and its host (None on this machine)."""
    host = frame.step.host
    return frame.step.name, host.name if host is not None else None
