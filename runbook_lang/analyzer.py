"""Static checks: names, types, references and warnings, every diagnostic in one pass.

The analyser walks the AST in file order with the run-wide scope of LANGUAGE.md §4: params,
secrets, lets, `into` and `set` variables become visible where they are defined. It never
stops at the first problem.
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from dataclasses import dataclass, field

from . import nodes as n
from .diagnostics import Diagnostic, at_span
from .loader import Module, available_stdlib
from .transform import ERROR_NAME

RESERVED = frozenset("""runbook import param secret let task step check gate finally on_failure
run http watch expect confirm note wait set fail if else for when timeout retry env dir
description rollback in and or not contains matches true false""".split())
TYPES = ("string", "int", "float", "bool", "duration", "list")
NUMERIC = {"int", "float", "number"}
# Types whose values have no fields (`.name`); all but strings and lists have no items (`[i]`).
SCALARS = frozenset({"int", "float", "number", "bool", "duration", "string", "list"})
# Builtins: name -> (min args, max args, result type).
BUILTINS = {
    "number": (1, 1, "number"), "int": (1, 1, "int"), "float": (1, 1, "float"),
    "str": (1, 1, "string"), "bool": (1, 1, "bool"), "len": (1, 1, "int"),
    "lower": (1, 1, "string"), "upper": (1, 1, "string"), "trim": (1, 1, "string"),
    "json": (1, 1, None), "getenv": (1, 2, "string"), "raw": (1, 1, "string"),
}
RUN_PROBE = {"exit_code": "int", "stdout": "string", "stderr": "string", "duration": "duration"}
HTTP_PROBE = {"status": "int", "body": "string", "headers": None, "duration": "duration"}
FINALLY_NAMES = {"run_status": "string", "failed_step": "string"}


@dataclass
class Symbol:
    """A name in scope: what defined it, its type if known, and where it may be unset."""

    kind: str  # param, secret, let, var, loop, task_param, probe, builtin
    type: str | None
    span: n.Span | None = None
    setter: str | None = None  # the step that sets a variable
    maybe_unset: bool = False
    secret: bool = False  # derived from a secret
    used: bool = False


@dataclass
class Context:
    """Where the walk is: the current step, whether inside if/finally/task, the scope."""

    scope: dict[str, Symbol]
    step: str | None = None
    conditional: bool = False
    in_finally: bool = False
    in_task: bool = False
    in_command: bool = False
    locals: dict[str, Symbol] = field(default_factory=dict)
    # Variables certainly set on the way here (in this block or one around it).
    definite: set[str] = field(default_factory=set)

    def lookup(self, name: str) -> Symbol | None:
        return self.locals.get(name) or self.scope.get(name)

    def inner(self, **changes) -> Context:
        new = Context(self.scope, self.step, self.conditional, self.in_finally, self.in_task,
                      self.in_command, dict(self.locals), set(self.definite))
        for key, value in changes.items():
            setattr(new, key, value)
        return new


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
    for imported in module.imports.values():
        if imported is not None:
            _analyse_module(imported, out, seen, is_main=False)


class Analyser:
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
            if ident.name in defined:
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
                for ident in _assigned(st):
                    found.setdefault(ident.name, Symbol("var", None, ident.span, step, True))
                for body in _children(st):
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
        if declared and default_type and not _assignable(default_type, declared):
            self.error("E230", f"param `{item.name.name}` is {_a(declared)}, but its default is "
                       f"{_a(default_type)}", item.default.span)
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
                elif not _assignable(_type_of_value(choice), ptype):
                    self.error("E231", f"choice {_show(choice)} is not {_a(ptype)}", node.span)
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
                regex = _compile(text)
            except re.error as error:
                self.error("E232", f"invalid pattern: {error}", item.pattern.span)
                return
            if default is not _NOTHING and isinstance(default, str) and not regex.search(default):
                self.error("E232", f"the default {_show(default)} of param `{item.name.name}` does "
                           f"not match its pattern `{text}`", item.default.span)

    def visit_secret(self, item: n.Secret) -> None:
        # An empty or interpolated source is reported by the transformer, where it is parsed.
        self.scope[item.name.name] = Symbol("secret", "string", item.name.span, secret=True)

    def visit_let(self, item: n.Let) -> None:
        ctx = Context(dict(self.scope))
        before = set(_names_in(item.value))
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
        if item.retry is not None:
            self.expect_type(item.retry.count, ctx, "int", "`retry`")
            if item.retry.every is not None:
                self.expect_type(item.retry.every, ctx, "duration", "`retry … every`")
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

    def exec_watch(self, st: n.Watch, ctx: Context) -> None:
        self.expr(st.title, ctx)
        self.expect_type(st.duration, ctx, "duration", "`watch … for`")
        self.expect_type(st.every, ctx, "duration", "`watch … every`")
        if st.tolerate is not None:
            self.expect_type(st.tolerate, ctx, "int", "`tolerate`")
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
                read = next((node for e in expects if (node := _name_node(e.expr, name))),
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
                           _suggest(arg.name.name, params) or
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
                           _suggest(st.name.name, self.tasks))
            return task
        alias = st.namespace.name
        if alias not in self.module.imports:
            self.error("E210", f"unknown module `{alias}` in `{st.qualified()}`",
                       st.namespace.span, _suggest(alias, self.module.imports) or
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
                       _suggest(st.name.name, tasks) or "tasks: " + ", ".join(sorted(tasks)))
        return task

    # ------------------------------------------------------------------ expressions

    def expect_type(self, expr, ctx: Context, wanted: str, what: str) -> None:
        found = self.expr(expr, ctx)
        if found is None or found == wanted or found == "any":
            return
        if wanted == "number" and found in NUMERIC:
            return
        if wanted in ("int",) and found == "number":
            return
        self.error("E242", f"{what} expects {_a(wanted)}, found {_a(found)}", expr.span)

    def mentions_secret(self, expr, ctx: Context) -> bool:
        return any((sym := ctx.lookup(name)) is not None and sym.secret
                   for name in _names_in(expr))

    def expr(self, expr, ctx: Context) -> str | None:
        """Check an expression; return its type when it is known statically."""
        return getattr(self, f"expr_{expr.kind}")(expr, ctx)

    def expr_literal(self, e: n.Literal_, ctx: Context) -> str:
        return e.type

    def expr_duration(self, e: n.Duration, ctx: Context) -> str:
        return "duration"

    def expr_string(self, e: n.String, ctx: Context) -> str:
        for part in e.parts:
            if part.kind == "interpolation":
                self.expr(part.expr, ctx)
                if ctx.in_command:
                    self.command_warnings(part.expr, ctx)
        return "string"

    def command_warnings(self, expr, ctx: Context) -> None:
        if expr.kind == "call" and expr.func.name == "raw":
            self.warn("W300", "`raw()` inserts text into the command without shell quoting",
                      expr.span, "make sure the value can never come from untrusted input")
        for name in _names_in(expr):
            sym = ctx.lookup(name)
            if sym is not None and sym.secret:
                self.warn("W301", f"secret `{name}` is interpolated into a command line",
                          expr.span, "command lines show up in process lists: pass it "
                          f"through `env {{ {name.upper()} = {name} }}` and use ${name.upper()} in "
                          "the command")

    def expr_list(self, e: n.ListExpr, ctx: Context) -> str:
        for item in e.items:
            self.expr(item, ctx)
        return "list"

    def expr_name(self, e: n.Name, ctx: Context) -> str | None:
        if e.name == ERROR_NAME:
            return None
        sym = ctx.lookup(e.name)
        if sym is None:
            if e.name in FINALLY_NAMES and not (ctx.in_finally or ctx.in_task):
                self.error("E262", f"`{e.name}` is only defined in `finally`", e.span)
            elif e.name in FINALLY_NAMES:
                return FINALLY_NAMES[e.name]
            else:
                self.undefined(e, ctx)
            return None
        sym.used = True
        if sym.kind == "var" and sym.maybe_unset and e.name not in ctx.definite \
                and not ctx.in_task:
            self.warn("W304", f"`{e.name}` may be unset here: the place that sets it (in "
                      f"`{sym.setter}`) may not have run", e.span,
                      "reading it then is a run-time error; set a default with `set` first, "
                      "or guard the read")
        if sym.type == "response":
            return None
        return sym.type

    def undefined(self, e: n.Name, ctx: Context) -> None:
        later = self.collect_assigned().get(e.name) if ctx.step else None
        hint = ""
        if e.name in RESERVED:
            hint = f"`{e.name}` is a reserved word: it never names a value"
        elif later is not None and later.setter:
            hint = f"it is set later, in step `{later.setter}`: names are defined in file order"
        else:
            names = set(ctx.scope) | set(ctx.locals)
            hint = _suggest(e.name, names)
        self.error("E200", f"undefined name `{e.name}`", e.span, hint)

    def expr_field(self, e: n.FieldAccess, ctx: Context) -> str | None:
        if e.target.kind == "name":
            sym = ctx.lookup(e.target.name)
            if sym is not None and sym.kind == "module":
                return self.module_member(e, sym)
            if sym is not None and sym.type == "response":
                sym.used = True
                self.expr(e.target, ctx)
                return {"status": "int", "body": "string"}.get(e.name)
        target = self.expr(e.target, ctx)
        if target in SCALARS:
            self.error("E241", f"{_a(target)} has no fields: `.{e.name}` cannot be read",
                       e.span, "fields belong to json() values, `http … into` results and "
                       "modules")
        return None

    def module_member(self, e: n.FieldAccess, sym: Symbol) -> str | None:
        sym.used = True
        alias = e.target.name  # type: ignore[union-attr]
        module = self.module.imports.get(alias)
        if module is None or module.ast is None:
            return None
        lets = {let.name.name for let in module.ast.of("let")}
        if e.name not in lets:
            self.error("E200", f"module `{alias}` has no let `{e.name}`", e.span,
                       _suggest(e.name, lets))
        return None

    def expr_index(self, e: n.Index, ctx: Context) -> None:
        target = self.expr(e.target, ctx)
        self.expr(e.index, ctx)
        if target in SCALARS - {"string", "list"}:
            self.error("E241", f"{_a(target)} cannot be indexed", e.span,
                       "index lists, strings and json() values")
        return None

    def expr_call(self, e: n.Call, ctx: Context) -> str | None:
        for arg in e.args:
            self.expr(arg, ctx)
        spec = BUILTINS.get(e.func.name)
        if spec is None:
            self.error("E270", f"unknown function `{e.func.name}`", e.func.span,
                       _suggest(e.func.name, BUILTINS) or
                       "builtins: " + ", ".join(sorted(BUILTINS)))
            return None
        low, high, result = spec
        if not low <= len(e.args) <= high:
            wanted = str(low) if low == high else f"{low} or {high}"
            self.error("E271", f"`{e.func.name}()` takes {wanted} argument"
                       f"{'s' if high != 1 else ''}, given {len(e.args)}", e.span)
        return result

    def expr_unary(self, e: n.Unary, ctx: Context) -> str | None:
        operand = self.expr(e.operand, ctx)
        if e.op == "not":
            if operand not in (None, "bool"):
                self.error("E241", f"`not` needs a bool, found {_a(operand)}", e.operand.span)
            return "bool"
        if operand not in (None, "int", "float", "number", "duration"):
            self.error("E241", f"unary `-` needs a number, found {_a(operand)}", e.operand.span)
        return operand

    def expr_binary(self, e: n.Binary, ctx: Context) -> str | None:
        left, right = self.expr(e.left, ctx), self.expr(e.right, ctx)
        op = e.op
        if op in ("and", "or"):
            for side, node in ((left, e.left), (right, e.right)):
                if side not in (None, "bool"):
                    self.error("E241", f"`{op}` needs bools, found {_a(side)}", node.span)
            return "bool"
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if left and right and not _comparable(left, right):
                self.error("E240", f"cannot compare {_a(left)} with {_a(right)} using `{op}`",
                           e.span, "convert one side first, e.g. number(x) or str(x)")
            elif op not in ("==", "!=") and (left in ("bool", "list") or right in ("bool",
                                                                                   "list")):
                self.error("E240", f"`{op}` does not order {_a(left or right)}", e.span)
            return "bool"
        if op in ("in", "not in"):
            if right not in (None, "list", "string"):
                self.error("E241", f"`{op}` needs a list or a string on its right, found "
                           f"{_a(right)}", e.right.span)
            return "bool"
        if op == "contains":
            if left not in (None, "list", "string"):
                self.error("E241", f"`contains` needs a list or a string on its left, found "
                           f"{_a(left)}", e.left.span)
            return "bool"
        if op == "matches":
            for side, node in ((left, e.left), (right, e.right)):
                if side not in (None, "string"):
                    self.error("E241", f"`matches` needs strings, found {_a(side)}", node.span)
            if e.right.kind == "string":
                text = e.right.constant()
                if text is not None:
                    try:
                        _compile(text)
                    except re.error as error:
                        self.error("E232", f"invalid regular expression: {error}", e.right.span)
            return "bool"
        return self.arithmetic(e, left, right)

    def arithmetic(self, e: n.Binary, left: str | None, right: str | None) -> str | None:
        if left is None or right is None:
            return None
        op = e.op
        if left in NUMERIC and right in NUMERIC:
            if op == "/":
                return "float"
            return "int" if left == right == "int" else "number"
        if op == "+" and left == right and left in ("string", "list", "duration"):
            return left
        if op == "-" and left == right == "duration":
            return "duration"
        if op in ("*", "/") and left == "duration" and right in NUMERIC:
            return "duration"
        if op == "*" and right == "duration" and left in NUMERIC:
            return "duration"
        self.error("E241", f"cannot apply `{op}` to {_a(left)} and {_a(right)}", e.span,
                   "use str(x) to join a value into text, or an interpolation \"{{x}}\""
                   if op == "+" and "string" in (left, right) else "")
        return None

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
        return _DurationValue(expr.ms, expr.text)
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
            for ident in _assigned(st):
                found[ident.name] = found.get(ident.name, False) or sure
            walk.extend((inner, False) for body in _children(st) for inner in body)
            if st.kind == "task_call" and where is not None:
                target = where if st.namespace is None else where.imports.get(
                    st.namespace.name)
                if target is not None and target.ast is not None:
                    callee = _tasks_of(target.ast).get(st.name.name)
                    if callee is not None:
                        todo.append((callee, target, sure))
    return found


def _compile(pattern: str) -> re.Pattern:
    """re.compile, without Python's FutureWarnings (`[[` …) leaking into a user's terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return re.compile(pattern)


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


class _DurationValue:
    """A constant duration: equal to another of the same length (`90s` is `1m30s`)."""

    __slots__ = ("ms", "text")

    def __init__(self, ms: int, text: str) -> None:
        self.ms, self.text = ms, text

    def __eq__(self, other) -> bool:
        return isinstance(other, _DurationValue) and other.ms == self.ms

    def __hash__(self) -> int:
        return hash(self.ms)


def _same_value(a, b) -> bool:
    """Equality as the language sees it: `true` is not `1`, `1` is `1.0`."""
    ta, tb = _type_of_value(a), _type_of_value(b)
    if ta != tb and not (ta in NUMERIC and tb in NUMERIC):
        return False
    return a == b


def _show(value) -> str:
    """A constant as it is written in a runbook, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, _DurationValue):
        return value.text
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _type_of_value(value) -> str:
    if isinstance(value, _DurationValue):
        return "duration"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    return "string"


def _assignable(found: str, wanted: str) -> bool:
    if found == wanted:
        return True
    if wanted == "float" and found in NUMERIC:
        return True
    return wanted == "int" and found == "number"


def _comparable(left: str, right: str) -> bool:
    if left == right:
        return True
    return left in NUMERIC and right in NUMERIC


def _a(type_name: str | None) -> str:
    names = {"int": "an int", "float": "a float", "number": "a number", "string": "a string",
             "bool": "a bool", "duration": "a duration", "list": "a list",
             "module": "a module", None: "a value"}
    return names.get(type_name, f"a {type_name}")


def _names_in(expr) -> list[str]:
    """Every variable name an expression reads (including inside interpolations)."""
    found: list[str] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        kind = node.kind
        if kind == "name":
            found.append(node.name)
        elif kind == "string":
            stack.extend(p.expr for p in node.parts if p.kind == "interpolation")
        elif kind == "list":
            stack.extend(node.items)
        elif kind == "field":
            stack.append(node.target)
        elif kind == "index":
            stack.extend((node.target, node.index))
        elif kind == "call":
            stack.extend(node.args)
        elif kind == "unary":
            stack.append(node.operand)
        elif kind == "binary":
            stack.extend((node.left, node.right))
    return found


def _name_node(expr, name: str):
    """The first `Name` node reading `name` in an expression (interpolations included)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.kind == "name" and node.name == name:
            return node
        if node.kind == "string":
            stack.extend(p.expr for p in reversed(node.parts) if p.kind == "interpolation")
        elif node.kind == "list":
            stack.extend(reversed(node.items))
        elif node.kind in ("field", "unary"):
            stack.append(node.target if node.kind == "field" else node.operand)
        elif node.kind == "index":
            stack.extend((node.index, node.target))
        elif node.kind == "call":
            stack.extend(reversed(node.args))
        elif node.kind == "binary":
            stack.extend((node.right, node.left))
    return None


def _assigned(statement) -> list[n.Ident]:
    if statement.kind in ("run", "http") and statement.into is not None:
        return [statement.into]
    if statement.kind == "set":
        return [statement.name]
    if statement.kind in ("check", "watch") and statement.probe is not None:
        return _assigned(statement.probe)
    return []


def _children(statement) -> list[list]:
    if statement.kind == "if":
        bodies = [b.body for b in statement.branches]
        if statement.otherwise is not None:
            bodies.append(statement.otherwise)
        return bodies
    if statement.kind == "for":
        return [statement.body]
    return []


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""
