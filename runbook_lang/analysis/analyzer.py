"""Static checks: names, types, references and warnings, every diagnostic in one pass.

The analyser walks the AST in file order with the run-wide scope of LANGUAGE.md §4: params,
secrets, lets, `into` and `set` variables become visible where they are defined. It never
stops at the first problem.
"""

from __future__ import annotations

import json
import re

from ..evaluation.params import pattern_matches
from ..syntax import nodes as n
from ..syntax.diagnostics import Diagnostic, at_span
from ..syntax.loader import Module, available_stdlib
from ..syntax.walk import assigned, children, name_node, names_in
from .identity import check_identity
from .typecheck import (
    HTTP_PROBE,
    NUMERIC,
    RESERVED,
    RUN_PROBE,
    TYPES,
    Context,
    DurationValue,
    ExpressionChecks,
    Symbol,
    article,
    assignable,
    compile_pattern,
    suggest,
    type_of_value,
)


def analyse(module: Module) -> list[Diagnostic]:
    """All diagnostics for a loaded module and the modules it imports, errors and warnings."""
    diagnostics: list[Diagnostic] = []
    seen: set = set()
    _analyse_module(module, diagnostics, seen, is_main=True)
    order = {path: i for i, path in enumerate(dict.fromkeys(
        d.location.path for d in diagnostics if d.location is not None))}
    return sorted(diagnostics, key=lambda d: (
        (order[d.location.path], d.location.line, d.location.column) if d.location else (-1, 0, 0)))


def _analyse_module(module: Module, out: list[Diagnostic], seen: set, is_main: bool) -> None:
    if module.path in seen:
        return
    seen.add(module.path)
    out.extend(module.diagnostics)
    if module.ast is not None:
        out.extend(Analyser(module, is_main).run())
        if is_main:
            out.extend(check_identity(module, any(d.is_error for d in out)))
    for imported in module.imports.values():
        if imported is not None:
            _analyse_module(imported, out, seen, is_main=False)


# Names the interpreter defines (run_status and failed_step in `finally`): never user names.
BUILTIN_NAMES = frozenset({"run_id", "run_status", "failed_step"})


class Analyser(ExpressionChecks):
    """One module's analysis. `run()` returns its diagnostics."""

    def __init__(self, module: Module, is_main: bool) -> None:
        assert module.ast is not None
        self.module = module
        self.ast = module.ast
        self.path = module.source.path
        self.is_main = is_main
        self.out: list[Diagnostic] = []
        self.scope: dict[str, Symbol] = {"run_id": Symbol("builtin", "string")}
        self.tasks = _tasks_of(self.ast)
        self.secrets = {s.name.name for s in self.ast.of("secret")}

    # ------------------------------------------------------------------ reporting

    def error(self, code: str, message: str, span, *hints: str) -> None:
        self.out.append(Diagnostic("error", code, message, at_span(self.path, span),
                                   tuple(h for h in hints if h)))

    def warn(self, code: str, message: str, span, *hints: str) -> None:
        self.out.append(Diagnostic("warning", code, message, at_span(self.path, span),
                                   tuple(h for h in hints if h)))

    # ------------------------------------------------------------------ driver

    def run(self) -> list[Diagnostic]:
        self.check_definitions()
        run_wide_vars = self.collect_assigned()
        for item in self.ast.items:
            getattr(self, f"visit_{item.kind}")(item)
        # The header is rendered once the params and lets are known, wherever they stand:
        # it usually comes first, above the params its title names.
        for item in self.ast.of("runbook"):
            self.visit_header(item)
        for task in self.ast.of("task"):
            self.visit_task_body(task, run_wide_vars)
        for item in self.ast.of("finally"):
            ctx = Context(self.full_scope(run_wide_vars), in_finally=True, step="finally")
            self.statements(item.body, ctx)
        self.check_unused()
        return self.out

    def check_definitions(self) -> None:
        headers = self.ast.of("runbook")
        for extra in headers[1:]:
            self.error("E261", "a file has at most one `runbook` header", extra.span)
        policies = self.ast.of("default_policy")
        for extra in policies[1:]:
            self.error("E110", "the default failure policy is set twice (first at line "
                       f"{policies[0].span.line})", extra.span, "keep one `on_failure` line")
        defined: dict[str, n.Ident] = {}
        for item in self.ast.items:
            ident = getattr(item, "name", None) if item.kind != "import" else item.alias
            if ident is None or item.kind in ("step", "check_step", "gate"):
                continue
            self.check_reserved(ident, item.kind)
            if ident.name in BUILTIN_NAMES and item.kind != "task":
                self.error("E204", f"`{ident.name}` is defined by runbook itself and cannot "
                           f"name a {item.kind}", ident.span, "use another name")
            elif ident.name in defined:
                self.error("E202", f"`{ident.name}` is defined twice (first at line "
                           f"{defined[ident.name].span.line})", ident.span)
            else:
                defined[ident.name] = ident
        units: dict[str, n.Ident] = {}
        for unit in self.ast.units:
            self.check_reserved(unit.name, "step")
            if unit.name.name in units:
                self.error("E201", f"duplicate step name `{unit.name.name}` (first at line "
                           f"{units[unit.name.name].span.line})", unit.name.span,
                           "step, check and gate names are unique: they address the step in "
                           "`--from`, `resume` and the transcript")
            else:
                units[unit.name.name] = unit.name
        if not self.is_main:
            for unit in self.ast.units:
                self.warn("W305", f"`{unit.name.name}` in an imported module never runs: "
                          "a module contributes tasks and lets", unit.name.span)

    def check_reserved(self, ident: n.Ident | None, what: str) -> None:
        if ident is not None and ident.name in RESERVED:
            what = {"import": "module alias"}.get(what, what.replace("_", " "))
            article = "an" if what[0] in "aeiou" else "a"
            self.error("E203", f"`{ident.name}` is a reserved word and cannot name {article} "
                       f"{what}", ident.span, "pick another name")

    def collect_assigned(self) -> dict[str, Symbol]:
        """Every `into`/`set` variable in the file, for task bodies and `finally`."""
        found: dict[str, Symbol] = {}

        def walk(statements, step: str | None) -> None:
            for st in statements or []:
                for ident in assigned(st):
                    if ident.name not in BUILTIN_NAMES:  # refused where it is assigned
                        found.setdefault(ident.name,
                                         Symbol("var", None, ident.span, step, True))
                for body in children(st):
                    walk(body, step)

        for item in self.ast.items:
            if item.kind in ("step", "check_step"):
                walk(item.body, item.name.name)
                walk(item.rollback, item.name.name)
                if item.on_failure is not None:
                    walk(item.on_failure.body, item.name.name)
                if item.probe is not None:
                    walk([item.probe], item.name.name)
            elif item.kind in ("task", "finally"):
                walk(item.body, None)
        return found

    def full_scope(self, run_wide_vars: dict[str, Symbol]) -> dict[str, Symbol]:
        scope = dict(run_wide_vars)
        scope.update(self.scope)
        return scope

    # ------------------------------------------------------------------ items

    def visit_runbook(self, item: n.RunbookHeader) -> None:
        pass  # walked once every param and let is known (visit_header)

    def visit_header(self, item: n.RunbookHeader) -> None:
        # Params, secrets and lets; not the variables, which no step has set yet.
        ctx = Context({name: sym for name, sym in self.scope.items() if sym.kind != "var"})
        for part in (item.title, item.description, item.owner, item.tags):
            if part is not None:
                self.expr(part, ctx)

    def visit_import(self, item: n.Import) -> None:
        # A module's lets are reached as `alias.name`, its tasks as `alias.task(…)`.
        self.scope[item.alias.name] = Symbol("module", "module", item.alias.span)

    def visit_param(self, item: n.Param) -> None:
        declared = item.type.name if item.type is not None else None
        if declared is not None and declared not in TYPES:
            self.error("E233", f"unknown type `{declared}` for param `{item.name.name}`",
                       item.type.span, "types: " + ", ".join(TYPES))
            declared = None
        ctx = Context(dict(self.scope))
        default_type = self.expr(item.default, ctx) if item.default is not None else None
        for name in names_in(item.default) if item.default is not None else []:
            symbol = self.scope.get(name)
            if symbol is not None and symbol.kind != "param":
                # Params are resolved before secrets and lets exist (LANGUAGE.md §8).
                self.error("E205", f"the default of param `{item.name.name}` reads "
                           f"{symbol.kind} `{name}`; a param's default can only use params "
                           "defined before it", name_node(item.default, name).span)
        if declared and default_type and not assignable(default_type, declared):
            self.error("E230", f"param `{item.name.name}` is {article(declared)}, but its "
                       "default is "
                       f"{article(default_type)}", item.default.span)
        ptype = declared or default_type or "string"
        self.check_param_constraints(item, ptype)
        self.scope[item.name.name] = Symbol("param", ptype, item.name.span)

    def check_param_constraints(self, item: n.Param, ptype: str) -> None:
        default = _constant(item.default) if item.default is not None else _NOTHING
        if item.choices is not None:
            choices = [_constant(c) for c in item.choices.items]
            for choice, node in zip(choices, item.choices.items, strict=True):
                if choice is _NOTHING:
                    self.error("E231", "`choices` takes constant values", node.span)
                elif not assignable(type_of_value(choice), ptype):
                    self.error("E231", f"choice {_show(choice)} is not {article(ptype)}", node.span)
            if default is not _NOTHING and not any(_same_value(default, c) for c in choices):
                self.error("E231", f"the default {_show(default)} of param `{item.name.name}` is "
                           "not one of its choices", item.default.span,
                           "choices: " + ", ".join(_show(c) for c in choices))
        if item.pattern is not None:
            text = _pattern_text(item.pattern)
            if text is None:
                self.error("E232", "a `pattern` cannot be interpolated", item.pattern.span)
                return
            try:
                compile_pattern(text)
            except re.error as error:
                self.error("E232", f"invalid pattern: {error}", item.pattern.span)
                return
            if default is not _NOTHING and isinstance(default, str) \
                    and not pattern_matches(text, default):
                self.error("E232", f"the default {_show(default)} of param `{item.name.name}` does "
                           f"not match its pattern `{text}`", item.default.span)

    def visit_secret(self, item: n.Secret) -> None:
        # An empty or interpolated source is reported by the transformer, where it is parsed.
        self.scope[item.name.name] = Symbol("secret", "string", item.name.span, secret=True)

    def visit_let(self, item: n.Let) -> None:
        ctx = Context(dict(self.scope))
        before = set(names_in(item.value))
        ltype = self.expr(item.value, ctx)
        secret = any(self.scope.get(name, Symbol("", None)).secret for name in before)
        self.scope[item.name.name] = Symbol("let", ltype, item.name.span, secret=secret)

    def visit_task(self, item: n.Task) -> None:
        for param in item.params:
            self.check_reserved(param.name, "task parameter")
            if param.default is not None:
                self.expr(param.default, Context(dict(self.scope)))

    def visit_task_body(self, task: n.Task, run_wide_vars: dict[str, Symbol]) -> None:
        locals_ = {p.name.name: Symbol("task_param", None, p.name.span, used=True)
                   for p in task.params}
        ctx = Context(self.full_scope(run_wide_vars), in_task=True, step=None, locals=locals_)
        self.statements(task.body, ctx)

    def visit_default_policy(self, item: n.DefaultPolicy) -> None:
        pass

    def visit_finally(self, item: n.Finally) -> None:
        pass  # walked last, once every variable of the file is known

    def visit_step(self, item: n.Step) -> None:
        ctx = Context(self.scope, step=item.name.name)
        if item.loop_over is not None:
            self.expect_type(item.loop_over, ctx, "list", "a `for` step's list")
            self.check_reserved(item.loop_var, "loop variable")
            ctx.locals[item.loop_var.name] = Symbol("loop", None, item.loop_var.span, used=True)
        self.expr(item.title, ctx)
        if item.when is not None:
            self.expect_type(item.when, ctx, "bool", "`when`")
        conditional = item.when is not None
        self.step_attributes(item, ctx)
        body_ctx = ctx.inner(conditional=conditional)
        if item.kind == "check_step":
            self.probe(item.probe, item.expects, body_ctx)
            for part, what in ((item.within, "`within`"), (item.every, "`every`")):
                if part is not None:
                    self.expect_type(part, ctx, "duration", what)
                    self.check_bounds(part, what, positive=True)
        else:
            self.statements(item.body, body_ctx)
        undo_ctx = ctx.inner(conditional=True)
        self.statements(item.rollback, undo_ctx)
        if item.on_failure is not None:
            self.statements(item.on_failure.body, undo_ctx)
            if item.on_failure.policy == "rollback" and item.on_failure.body is None \
                    and item.rollback is None and item.kind == "check_step":
                pass  # a check undoes nothing itself; the saga unwinds earlier steps

    visit_check_step = visit_step

    def step_attributes(self, item: n.Step, ctx: Context) -> None:
        if item.timeout is not None:
            self.expect_type(item.timeout, ctx, "duration", "`timeout`")
            self.check_bounds(item.timeout, "`timeout`", positive=True)
        if item.retry is not None:
            self.expect_type(item.retry.count, ctx, "int", "`retry`")
            self.check_bounds(item.retry.count, "`retry`", positive=False)
            if item.retry.every is not None:
                self.expect_type(item.retry.every, ctx, "duration", "`retry … every`")
                self.check_bounds(item.retry.every, "`retry … every`", positive=False)
            if item.retry.backoff is not None:
                self.expect_type(item.retry.backoff, ctx, "number", "`backoff`")
        for var in item.env or []:
            self.expr(var.value, ctx)
        for part in (item.dir, item.description):
            if part is not None:
                self.expr(part, ctx)

    def visit_gate(self, item: n.Gate) -> None:
        ctx = Context(self.scope, step=item.name.name)
        self.expr(item.title, ctx)
        if item.when is not None:
            self.expect_type(item.when, ctx, "bool", "`when`")
        if item.timeout is not None:
            self.expect_type(item.timeout, ctx, "duration", "`timeout`")
            self.check_bounds(item.timeout, "`timeout`", positive=True)
        if item.self_approval is not None:
            self.expect_type(item.self_approval, ctx, "bool", "`self_approval`")
        for part in (item.message, item.description):
            if part is not None:
                self.expr(part, ctx)
        approvers = None
        if item.approvers is not None:
            self.expr(item.approvers, ctx)
            values = [_constant(a) for a in item.approvers.items]
            if not values:
                self.error("E251", f"gate `{item.name.name}` lists no approvers: nobody could "
                           "approve it", item.approvers.span,
                           "leave `approvers` out to let anyone approve")
            elif all(v is not _NOTHING for v in values):
                approvers = set()
                for value, node in zip(values, item.approvers.items, strict=True):
                    if not isinstance(value, str) or not value:
                        self.error("E251", "approvers are names (non-empty strings)", node.span)
                    elif value in approvers:
                        self.error("E251", f"approver {_show(value)} is listed twice",
                                   node.span, "each name counts once toward the quorum")
                    else:
                        approvers.add(value)
        if item.require is not None:
            self.expect_type(item.require, ctx, "int", "`require`")
            required = _constant(item.require)
            if isinstance(required, int) and not isinstance(required, bool):
                if required < 1:
                    self.error("E250", f"`require {required}`: a gate needs at least one "
                               "approval", item.require.span)
                elif approvers is not None and required > len(approvers):
                    self.error("E250", f"gate `{item.name.name}` requires {required} approvals "
                               f"but names only {len(approvers)} approver"
                               f"{'s' if len(approvers) != 1 else ''}", item.require.span)

    # ------------------------------------------------------------------ statements

    def statements(self, statements, ctx: Context) -> None:
        for statement in statements or []:
            getattr(self, f"exec_{statement.kind}")(statement, ctx)

    def assign(self, ident: n.Ident, vtype: str | None, ctx: Context, secret: bool) -> None:
        self.check_reserved(ident, "variable")
        if ident.name in ctx.locals and ctx.locals[ident.name].kind in ("loop", "task_param"):
            what = {"loop": "loop variable", "task_param": "task parameter"}[
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
        self.expr(st.command, ctx.inner(in_command=True))
        if st.into is not None:
            self.assign(st.into, "string", ctx, self.mentions_secret(st.command, ctx))

    def exec_http(self, st: n.Http, ctx: Context) -> None:
        self.expr(st.url, ctx)
        for header in st.headers:
            self.expr(header.name, ctx)
            self.expr(header.value, ctx)
        if st.body is not None:
            self.expr(st.body, ctx)
        if st.into is not None:
            self.assign(st.into, "response", ctx, False)

    def exec_check(self, st: n.CheckStatement, ctx: Context) -> None:
        self.expr(st.title, ctx)
        self.probe(st.probe, st.expects, ctx)
        for part, what in ((st.within, "`within`"), (st.every, "`every`")):
            if part is not None:
                self.expect_type(part, ctx, "duration", what)
                self.check_bounds(part, what, positive=True)

    def exec_watch(self, st: n.Watch, ctx: Context) -> None:
        self.expr(st.title, ctx)
        self.expect_type(st.duration, ctx, "duration", "`watch … for`")
        self.expect_type(st.every, ctx, "duration", "`watch … every`")
        self.check_bounds(st.duration, "`watch … for`", positive=True)
        self.check_bounds(st.every, "`watch … every`", positive=True)
        if st.tolerate is not None:
            self.expect_type(st.tolerate, ctx, "int", "`tolerate`")
            self.check_bounds(st.tolerate, "`tolerate`", positive=False)
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
            self.expect_type(expect.expr, expect_ctx, "bool", "`expect`")

    def exec_expect(self, st: n.Expect, ctx: Context) -> None:
        self.error("E260", "`expect` belongs inside a `check` or a `watch`", st.span,
                   "wrap the probe and its expectations in `check \"…\" { run … expect … }`")
        # Read it as if it were in place, so that `exit_code` or `status` are not reported too.
        probe_ctx = ctx.inner()
        for name, ptype in (RUN_PROBE | HTTP_PROBE).items():
            probe_ctx.locals[name] = Symbol("probe", ptype, used=True)
        self.expr(st.expr, probe_ctx)

    def exec_confirm(self, st: n.Confirm, ctx: Context) -> None:
        self.expr(st.question, ctx)

    def exec_note(self, st: n.Note, ctx: Context) -> None:
        self.expr(st.text, ctx)

    def exec_fail(self, st: n.Fail, ctx: Context) -> None:
        self.expr(st.message, ctx)

    def exec_wait(self, st: n.Wait, ctx: Context) -> None:
        self.expect_type(st.duration, ctx, "duration", "`wait`")
        self.check_bounds(st.duration, "`wait`", positive=False)

    def check_bounds(self, expr, what: str, positive: bool) -> None:
        """E243 for a constant that is negative (or zero, where time must pass)."""
        value = _signed_constant(expr)
        if value is None:
            return
        if value < 0 or (positive and value == 0):
            need = "more than zero" if positive else "zero or more"
            self.error("E243", f"{what} must be {need}", expr.span)

    def exec_set(self, st: n.Set, ctx: Context) -> None:
        vtype = self.expr(st.value, ctx)
        self.assign(st.name, vtype, ctx, self.mentions_secret(st.value, ctx))

    def exec_if(self, st: n.If, ctx: Context) -> None:
        # Each branch has its own idea of what is certainly set; with an `else`, a variable
        # that every branch sets is certainly set after the `if`.
        settled: list[set[str]] = []
        for branch in st.branches:
            self.expect_type(branch.condition, ctx, "bool", "`if`")
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
        self.expect_type(st.iterable, ctx, "list", "`for`")
        inner = ctx.inner(conditional=True)
        self.check_reserved(st.var, "loop variable")
        inner.locals[st.var.name] = Symbol("loop", None, st.var.span, used=True)
        self.statements(st.body, inner)

    def exec_task_call(self, st: n.TaskCall, ctx: Context) -> None:
        task = self.find_task(st)
        for arg in st.args:
            self.expr(arg.value, ctx)
        if task is None:
            return
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

    def define_task_variables(self, st: n.TaskCall, task: n.Task, ctx: Context) -> None:
        """A task's `set` and `into` are run-wide: after the call, its variables exist."""
        module = self.module if st.namespace is None else self.module.imports.get(
            st.namespace.name)
        for name, certain in _task_assigns(task, module).items():
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
        tasks = _tasks_of(module.ast)
        task = tasks.get(st.name.name)
        if task is None:
            self.error("E210", f"module `{alias}` has no task `{st.name.name}`", st.name.span,
                       suggest(st.name.name, tasks) or "tasks: " + ", ".join(sorted(tasks)))
        return task

    # ------------------------------------------------------------------ unused

    def check_unused(self) -> None:
        # A parse error leaves a placeholder where an expression was: what it read is unknown.
        if not self.is_main or any(d.code.startswith("E1") for d in self.module.diagnostics):
            return
        for item in self.ast.of("param", "let"):
            sym = self.scope.get(item.name.name)
            if sym is None or sym.used or item.name.name == "environment" \
                    or item.name.name in RESERVED:
                continue
            code = "W302" if item.kind == "param" else "W303"
            self.warn(code, f"{item.kind} `{item.name.name}` is never used", item.name.span)


# ---------------------------------------------------------------------- helpers

_NOTHING = object()


def _constant(expr):
    """The value of a constant expression (literal, plain string, list of those), or _NOTHING."""
    if expr is None:
        return _NOTHING
    if expr.kind == "literal":
        return expr.value
    if expr.kind == "string":
        text = expr.constant()
        return _NOTHING if text is None else text
    if expr.kind == "duration":
        return DurationValue(expr.ms, expr.text)
    if expr.kind == "unary" and expr.op == "-" and expr.operand.kind == "literal":
        return -expr.operand.value
    if expr.kind == "list":
        items = [_constant(i) for i in expr.items]
        return _NOTHING if any(i is _NOTHING for i in items) else items
    return _NOTHING


def _task_assigns(task: n.Task, module: Module | None) -> dict[str, bool]:
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
                    callee = _tasks_of(target.ast).get(st.name.name)
                    if callee is not None:
                        todo.append((callee, target, sure))
    return found


def _tasks_of(ast: n.Runbook) -> dict[str, n.Task]:
    """Tasks by name; of two with one name (E202) the first counts, as the message says."""
    tasks: dict[str, n.Task] = {}
    for task in ast.of("task"):
        tasks.setdefault(task.name.name, task)
    return tasks


def _pattern_text(pattern: n.String) -> str | None:
    # `pattern` strings take no interpolation: `{{` in a regex is a literal brace pair.
    parts = []
    for part in pattern.parts:
        if part.kind != "text":
            return None
        parts.append(part.value)
    return "".join(parts)


def _same_value(a, b) -> bool:
    """Equality as the language sees it: `true` is not `1`, `1` is `1.0`."""
    ta, tb = type_of_value(a), type_of_value(b)
    if ta != tb and not (ta in NUMERIC and tb in NUMERIC):
        return False
    return a == b


def _show(value) -> str:
    """A constant as it is written in a runbook, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, DurationValue):
        return value.text
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _signed_constant(expr) -> float | None:
    """A constant int or duration (in ms), with its sign; None for anything computed."""
    sign = 1
    if expr.kind == "unary" and expr.op == "-":
        sign, expr = -1, expr.operand
    if expr.kind == "duration":
        return sign * expr.ms
    if expr.kind == "literal" and expr.type in ("int", "float"):
        return sign * expr.value
    return None
