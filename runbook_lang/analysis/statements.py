"""The statements of step, check, task, rollback and finally blocks, and the calls of tasks.

`StatementChecker` is a collaborator of the `Analyser`: it follows which variables are set
where (LANGUAGE.md §4: one run-wide scope, in file order) and checks each statement's
expressions with the `ExpressionChecker`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hints import TYPE_CHECKING
from ..syntax import nodes as n
from ..syntax.diagnostics import Diagnostic, at_span
from ..syntax.loader import Module, available_stdlib
from ..syntax.walk import assigned, children, name_node, names_in
from .quoting import check_command_quoting
from .scope import BUILTIN_NAMES, Context, Reporter, Symbol
from .signatures import Need, Signature
from .typecheck import HTTP_PROBE, RUN_PROBE, ExpressionChecker, article, suggest

if TYPE_CHECKING:
    from .tasks import Signatures


class StatementChecker:
    """Checks statements and task calls of one module, updating the scope as it goes."""

    def __init__(self, report: Reporter, types: ExpressionChecker, module: Module,
                 signatures: Signatures | None = None) -> None:
        assert module.ast is not None
        self.signatures = signatures  # what calls are checked against (tasks.Signatures)
        self.report = report
        self.error = report.error
        self.warn = report.warn
        self.types = types
        self.module = module
        self.tasks = tasks_of(module.ast)

    def statements(self, statements, ctx: Context) -> None:
        """Check a block's statements in order."""
        for statement in statements or []:
            _STATEMENTS[statement.kind](self, statement, ctx)

    def assign(self, ident: n.Ident, vtype: str | None, ctx: Context, secret: bool) -> None:
        self.report.check_reserved(ident, "variable")
        if ident.name in ctx.locals and ctx.locals[ident.name].kind in ("loop", "task_param",
                                                                        "target"):
            what = {"loop": "loop variable", "task_param": "task parameter",
                    "target": "name runbook gives the current host in an `on` step"}[
                ctx.locals[ident.name].kind]
            self.error("E204", f"`{ident.name}` is a {what} and cannot be assigned", ident.span,
                       "use a new variable name")
            return
        if ident.name in BUILTIN_NAMES:
            self.error("E204", f"`{ident.name}` is defined by runbook itself and cannot be "
                       "assigned", ident.span, "use a new variable name")
            return
        existing = ctx.scope.get(ident.name)
        if existing is not None and existing.kind in ("param", "secret", "let", "builtin",
                                                      "module"):
            self.error("E204", f"`{ident.name}` is a {existing.kind} and cannot be assigned",
                       ident.span, "use a new variable name")
            return
        maybe_unset = ctx.conditional or (existing.maybe_unset if existing else False)
        if existing is not None and not existing.maybe_unset:
            maybe_unset = False
        ctx.scope[ident.name] = Symbol("var", vtype, ident.span, ctx.step or "a task",
                                       maybe_unset, secret, used=True)
        ctx.definite.add(ident.name)

    def exec_run(self, st: n.Run, ctx: Context) -> None:
        self.types.check(st.command, ctx.inner(in_command=True))
        check_command_quoting(self.report, self.module, st.command)
        if st.into is not None:
            self.assign(st.into, "string", ctx, self.types.mentions_secret(st.command, ctx))

    def exec_http(self, st: n.Http, ctx: Context) -> None:
        self.types.check(st.url, ctx)
        for header in st.headers:
            self.types.check(header.name, ctx)
            self.types.check(header.value, ctx)
        if st.body is not None:
            self.types.check(st.body, ctx)
        if st.into is not None:
            self.assign(st.into, "response", ctx, False)

    def exec_check(self, st: n.CheckStatement, ctx: Context) -> None:
        self.types.check(st.title, ctx)
        self.probe(st.probe, st.expects, ctx)
        for part, what in ((st.within, "`within`"), (st.every, "`every`")):
            if part is not None:
                self.types.expect_type(part, ctx, "duration", what)
                self.types.check_bounds(part, what, positive=True)

    def exec_watch(self, st: n.Watch, ctx: Context) -> None:
        self.types.check(st.title, ctx)
        self.types.expect_type(st.duration, ctx, "duration", "`watch … for`")
        self.types.expect_type(st.every, ctx, "duration", "`watch … every`")
        self.types.check_bounds(st.duration, "`watch … for`", positive=True)
        self.types.check_bounds(st.every, "`watch … every`", positive=True)
        if st.tolerate is not None:
            self.types.expect_type(st.tolerate, ctx, "int", "`tolerate`")
            self.types.check_bounds(st.tolerate, "`tolerate`", positive=False)
        self.probe(st.probe, st.expects, ctx)

    def probe(self, probe, expects: list[n.Expect], ctx: Context) -> None:
        if probe is None:
            return
        getattr(self, f"exec_{probe.kind}")(probe, ctx)
        results = RUN_PROBE if probe.kind == "run" else HTTP_PROBE
        expect_ctx = ctx.inner()
        for name, ptype in results.items():
            shadow = ctx.locals.get(name)
            if shadow is not None:
                read = next((node for e in expects if (node := name_node(e.expr, name))),
                            None)
                if read is not None:
                    what = {"loop": "loop variable", "task_param": "task parameter"}.get(
                        shadow.kind, shadow.kind.replace("_", " "))
                    self.warn("W306", f"`{name}` here is the {what}, not the probe's `{name}`",
                              read.span, f"rename the {what} so that `expect` can read the "
                              f"probe's `{name}`")
                continue
            expect_ctx.locals[name] = Symbol("probe", ptype, used=True)
        for expect in expects:
            self.types.expect_type(expect.expr, expect_ctx, "bool", "`expect`")

    def exec_expect(self, st: n.Expect, ctx: Context) -> None:
        self.error("E260", "`expect` belongs inside a `check` or a `watch`", st.span,
                   "wrap the probe and its expectations in `check \"…\" { run … expect … }`")
        # Read it as if it were in place, so that `exit_code` or `status` are not reported too.
        probe_ctx = ctx.inner()
        for name, ptype in (RUN_PROBE | HTTP_PROBE).items():
            probe_ctx.locals[name] = Symbol("probe", ptype, used=True)
        self.types.check(st.expr, probe_ctx)

    def exec_confirm(self, st: n.Confirm, ctx: Context) -> None:
        self.types.check(st.question, ctx)

    def exec_note(self, st: n.Note, ctx: Context) -> None:
        self.types.check(st.text, ctx)

    def exec_fail(self, st: n.Fail, ctx: Context) -> None:
        self.types.check(st.message, ctx)

    def exec_wait(self, st: n.Wait, ctx: Context) -> None:
        self.types.expect_type(st.duration, ctx, "duration", "`wait`")
        self.types.check_bounds(st.duration, "`wait`", positive=False)

    def exec_set(self, st: n.Set, ctx: Context) -> None:
        vtype = self.types.check(st.value, ctx)
        self.assign(st.name, vtype, ctx, self.types.mentions_secret(st.value, ctx))

    def exec_if(self, st: n.If, ctx: Context) -> None:
        # Each branch has its own idea of what is certainly set; with an `else`, a variable
        # that every branch sets is certainly set after the `if`.
        settled: list[set[str]] = []
        for branch in st.branches:
            self.types.expect_type(branch.condition, ctx, "bool", "`if`")
            inner = ctx.inner(conditional=True)
            self.statements(branch.body, inner)
            settled.append(inner.definite)
        if st.otherwise is None:
            return
        inner = ctx.inner(conditional=True)
        self.statements(st.otherwise, inner)
        settled.append(inner.definite)
        for name in set.intersection(*settled) - ctx.definite:
            self.settle(name, ctx)

    def settle(self, name: str, ctx: Context) -> None:
        """`name` is certainly set from here on (unless the whole block may not run)."""
        sym = ctx.scope.get(name)
        if sym is not None and sym.kind == "var" and not ctx.conditional:
            sym.maybe_unset = False
        ctx.definite.add(name)

    def exec_for(self, st: n.For, ctx: Context) -> None:
        self.types.expect_type(st.iterable, ctx, "list", "`for`")
        inner = ctx.inner(conditional=True)
        self.report.check_reserved(st.var, "loop variable")
        inner.locals[st.var.name] = Symbol("loop", None, st.var.span, used=True)
        self.statements(st.body, inner)

    def exec_task_call(self, st: n.TaskCall, ctx: Context) -> None:
        task = self.find_task(st)
        found = {arg.name.name: self.types.check(arg.value, ctx) for arg in st.args}
        if task is None:
            return
        if self.signatures is not None:
            module = self.module if st.namespace is None else self.module.imports.get(
                st.namespace.name)
            signature = self.signatures.of(module, task)
            for arg in st.args:
                self.check_argument(st, arg, found[arg.name.name], signature, ctx)
        if not ctx.in_task:
            self.define_task_variables(st, task, ctx)
        params = {p.name.name: p for p in task.params}
        given = {a.name.name for a in st.args}
        for arg in st.args:
            if arg.name.name not in params:
                self.error("E211", f"task `{st.qualified()}` has no parameter "
                           f"`{arg.name.name}`", arg.name.span,
                           suggest(arg.name.name, params) or
                           "parameters: " + (", ".join(params) or "none"))
        missing = [p for p in task.params if p.default is None and p.name.name not in given]
        for param in missing:
            self.error("E212", f"call of `{st.qualified()}` is missing the argument "
                       f"`{param.name.name}`", st.span)

    def check_argument(self, st: n.TaskCall, arg: n.Argument, found: str | None,
                       signature: Signature, ctx: Context) -> None:
        """E214 when an argument cannot be what the task needs; W301 when it holds a
        secret that the task interpolates into a command line. While the calling task's
        own signature is learnt, its parameters passed on take on the callee's needs."""
        name = arg.name.name
        needs = signature.needs.get(name, [])
        lands = signature.lands.get(name, [])
        for read in names_in(arg.value):
            sym = ctx.lookup(read)
            if sym is not None and sym.lands is not None:
                sym.lands.extend(lands)
        if arg.value.kind == "name":
            sym = ctx.lookup(arg.value.name)
            if sym is not None and sym.needs is not None and sym.type is None:
                sym.needs.extend(needs)
        if found is not None:
            for need in needs:
                if not need.met_by(found):
                    self.argument_error(st, arg, found, need)
                    break
        if lands and self.types.mentions_secret(arg.value, ctx):
            self.secret_argument(st, arg, lands, ctx)

    def argument_error(self, st: n.TaskCall, arg: n.Argument, found: str, need: Need) -> None:
        name, task = arg.name.name, st.qualified()
        if need.what == "its default":
            why = f"its default at {need.place(self.report.path)} is {article(need.type)}"
        elif need.compare:
            why = f"the task compares it with {article(need.type)} using {need.what} at " \
                  f"{need.place(self.report.path)}"
        else:
            why = f"the task uses it for {need.what} at {need.place(self.report.path)}"
        wanted = f"comparable with {article(need.type)}" if need.compare else \
            article(need.type)
        hint = ""
        value = arg.value
        if need.type == "duration" and value.kind == "literal" and value.type == "int":
            hint = f"a duration takes a unit: `{value.value}s`, `{value.value}m`, " \
                   f"`{value.value}ms`"
        self.error("E214", f"argument `{name}` of `{task}` must be {wanted}, found "
                   f"{article(found)}: {why}", arg.value.span, hint)

    def secret_argument(self, st: n.TaskCall, arg: n.Argument, lands: list, ctx: Context
                        ) -> None:
        secret = next(name for name in names_in(arg.value)
                      if (sym := ctx.lookup(name)) is not None and sym.secret)
        name, task = arg.name.name, st.qualified()
        call_at = f"{arg.span.line}:{arg.span.column}"
        self.warn("W301", f"secret `{secret}` is passed as argument `{name}` of `{task}`, "
                  "which interpolates it into a command line", arg.value.span,
                  f"command lines show up in process lists: in the task, pass `{name}` "
                  f"through `env {{ {name.upper()} = {name} }}` and use ${name.upper()}")
        for landing in lands:
            key = (landing.path, landing.span.start)
            if self.signatures is None or key in self.signatures.warned:
                continue
            self.signatures.warned.add(key)
            self.report.out.append(Diagnostic(
                "warning", "W301", f"`{name}` of task `{st.name.name}` holds a secret here "
                f"(passed at {_place(self.report.path, landing.path, call_at)}): it is "
                "interpolated into a command line",
                at_span(landing.path, landing.span),
                (f"pass it through `env {{ {name.upper()} = {name} }}` and use "
                 f"${name.upper()} in the command",)))

    def define_task_variables(self, st: n.TaskCall, task: n.Task, ctx: Context) -> None:
        """A task's `set` and `into` are run-wide: after the call, its variables exist."""
        module = self.module if st.namespace is None else self.module.imports.get(
            st.namespace.name)
        for name, certain in task_assigns(task, module).items():
            existing = ctx.scope.get(name)
            if existing is not None and existing.kind != "var":
                continue  # reported in the task's body
            if existing is None or existing.maybe_unset:
                ctx.scope[name] = Symbol("var", None, st.span, ctx.step or "a task",
                                         ctx.conditional or not certain, used=True)
            if certain:
                ctx.definite.add(name)

    def find_task(self, st: n.TaskCall) -> n.Task | None:
        if st.namespace is None:
            task = self.tasks.get(st.name.name)
            if task is None:
                self.error("E210", f"unknown task `{st.name.name}`", st.name.span,
                           suggest(st.name.name, self.tasks))
            return task
        alias = st.namespace.name
        if alias not in self.module.imports:
            self.error("E210", f"unknown module `{alias}` in `{st.qualified()}`",
                       st.namespace.span, suggest(alias, self.module.imports) or
                       "import it first: " + (f"import \"std/{alias}\" as {alias}"
                                              if alias in available_stdlib() else
                                              f"import \"std/NAME\" as {alias}, or "
                                              f"import \"./FILE.runbook\" as {alias}"))
            return None
        module = self.module.imports[alias]
        if module is None or module.ast is None:
            return None  # already reported where the import stands
        tasks = tasks_of(module.ast)
        task = tasks.get(st.name.name)
        if task is None:
            self.error("E210", f"module `{alias}` has no task `{st.name.name}`", st.name.span,
                       suggest(st.name.name, tasks) or "tasks: " + ", ".join(sorted(tasks)))
        return task


def task_assigns(task: n.Task, module: Module | None) -> dict[str, bool]:
    """Variables a call of `task` sets, through the tasks it calls: name -> set on every path."""
    found: dict[str, bool] = {}
    seen: set[int] = set()
    todo = [(task, module, True)]
    while todo:
        current, where, certain = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        walk = [(st, certain) for st in current.body]
        while walk:
            st, sure = walk.pop()
            for ident in assigned(st):
                found[ident.name] = found.get(ident.name, False) or sure
            walk.extend((inner, False) for body in children(st) for inner in body)
            if st.kind == "task_call" and where is not None:
                target = where if st.namespace is None else where.imports.get(
                    st.namespace.name)
                if target is not None and target.ast is not None:
                    callee = tasks_of(target.ast).get(st.name.name)
                    if callee is not None:
                        todo.append((callee, target, sure))
    return found


def tasks_of(ast: n.Runbook) -> dict[str, n.Task]:
    """Tasks by name; of two with one name (E202) the first counts, as the message says."""
    tasks: dict[str, n.Task] = {}
    for task in ast.of("task"):
        tasks.setdefault(task.name.name, task)
    return tasks


_STATEMENTS: dict[str, Callable[[StatementChecker, object, Context], None]] = {
    kind: getattr(StatementChecker, f"exec_{kind}")
    for kind in ("run", "http", "check", "watch", "expect", "confirm", "note", "wait", "set",
                 "fail", "if", "for", "task_call")
}


def _place(path: str, here: str, line_column: str) -> str:
    """`line L:C` when `path` is the file `here`, else `path:L:C`."""
    return f"line {line_column}" if path == here else f"{path}:{line_column}"
