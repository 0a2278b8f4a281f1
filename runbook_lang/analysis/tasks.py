"""Tasks as a whole: the signatures their calls are checked against, and recursion.

`Signatures` learns what each task asks of its arguments by walking its body once with
checkers whose findings are thrown away (signatures.py says what is learnt). A task that
calls itself, directly or through others, is an error (E213): `runbook run` would only
find out 64 calls deep, in the middle of a step.
"""

from __future__ import annotations

from ..syntax import nodes as n
from ..syntax.loader import Module
from ..syntax.walk import children
from .scope import Context, Reporter, Symbol
from .signatures import Need, Signature
from .statements import StatementChecker, tasks_of
from .typecheck import ExpressionChecker


class Signatures:
    """The signatures of the tasks of one analysis (a runbook and its modules), each learnt
    once, on first use."""

    def __init__(self) -> None:
        self._known: dict[tuple, Signature] = {}
        self._busy: set[tuple] = set()
        # Landings already warned about: one warning per place, however many calls.
        self.warned: set[tuple] = set()

    def of(self, module: Module | None, task: n.Task) -> Signature:
        """The signature of `task` of `module` (empty while it is being learnt: a task that
        calls itself is reported as E213, and asks nothing more of itself)."""
        if module is None or module.ast is None:
            return Signature()
        key = (module.path, task.span.start)
        if key in self._known:
            return self._known[key]
        if key in self._busy:
            return Signature()
        self._busy.add(key)
        try:
            signature = self._learn(module, task)
        finally:
            self._busy.discard(key)
        self._known[key] = signature
        return signature

    def _learn(self, module: Module, task: n.Task) -> Signature:
        path = module.source.path
        ignored = Reporter(path)  # the real pass reports; this one only learns
        types = ExpressionChecker(ignored, module)
        blocks = StatementChecker(ignored, types, module, self)
        locals_: dict[str, Symbol] = {}
        for param in task.params:
            ptype = types.check(param.default, Context({})) if param.default is not None \
                else None
            needs = [Need(ptype, "its default", path, param.default.span)] \
                if ptype is not None and param.default is not None else []
            locals_[param.name.name] = Symbol("task_param", ptype, param.name.span, used=True,
                                              needs=needs, lands=[])
        blocks.statements(task.body, Context({}, in_task=True, locals=locals_))
        signature = Signature()
        for name, symbol in locals_.items():
            signature.needs[name] = list(symbol.needs or [])
            signature.lands[name] = list(symbol.lands or [])
        return signature


def check_recursion(module: Module, report: Reporter) -> None:
    """E213 for each task that calls itself, directly or through other tasks of its module
    (a module's tasks cannot call back into the file that imports it: that would be an
    import cycle)."""
    assert module.ast is not None
    tasks = tasks_of(module.ast)
    calls = {name: _calls(task) for name, task in tasks.items()}
    reported: set[str] = set()
    for name in tasks:
        if name in reported:
            continue
        for call in calls[name]:
            path = _path_back(call.name.name, name, calls)
            if path is None:
                continue
            cycle = [name, *path]
            reported.update(cycle)
            shown = " → ".join(cycle)
            report.error("E213", f"task `{name}` calls itself: {shown}", call.name.span,
                         "a task cannot call itself, directly or through other tasks: a "
                         "`for` loop repeats statements")
            break


def _calls(task: n.Task) -> list[n.TaskCall]:
    """The calls of tasks of the same module in a task's body, in order."""
    found: list[n.TaskCall] = []
    stack = list(reversed(task.body))
    while stack:
        statement = stack.pop()
        if statement.kind == "task_call" and statement.namespace is None:
            found.append(statement)
        for body in reversed(children(statement)):
            stack.extend(reversed(body))
    return found


def _path_back(start: str, target: str, calls: dict[str, list[n.TaskCall]]) -> list[str] | None:
    """The names from `start` to a call of `target` (ending in `target`), or None."""
    seen: set[str] = set()
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        current, path = stack.pop()
        if current == target:
            return path
        if current in seen or current not in calls:
            continue
        seen.add(current)
        for call in reversed(calls[current]):
            stack.append((call.name.name, [*path, call.name.name]))
    return None
