"""Static checks: names, types, references and warnings, every diagnostic in one pass.

The analyser walks the AST in file order with the run-wide scope of LANGUAGE.md §4: params,
secrets, lets, `into` and `set` variables become visible where they are defined. It never
stops at the first problem.
"""

from __future__ import annotations

from ..evaluation.regex import PatternError, compile_pattern
from ..evaluation.values import type_name
from ..syntax import nodes as n
from ..syntax.diagnostics import Diagnostic
from ..syntax.lexicon import RESERVED, TYPES
from ..syntax.loader import Module
from ..syntax.walk import name_node, names_in
from .constants import NOTHING, constant, pattern_text, same_value, show
from .identity import check_identity
from .scope import BUILTIN_NAMES, Context, Reporter, Symbol, assigned_variables
from .statements import StatementChecker
from .targets import INVENTORY_NAMES, TargetChecker
from .tasks import Signatures, check_recursion
from .typecheck import ExpressionChecker, article, assignable

__all__ = ["RESERVED", "Analyser", "analyse"]


def analyse(module: Module) -> list[Diagnostic]:
    """All diagnostics for a loaded module and the modules it imports, errors and warnings."""
    diagnostics: list[Diagnostic] = []
    seen: set = set()
    _analyse_module(module, diagnostics, seen, is_main=True, signatures=Signatures())
    order = {path: i for i, path in enumerate(dict.fromkeys(
        d.location.path for d in diagnostics if d.location is not None))}
    return sorted(diagnostics, key=lambda d: (
        (order[d.location.path], d.location.line, d.location.column) if d.location else (-1, 0, 0)))


def _analyse_module(module: Module, out: list[Diagnostic], seen: set, is_main: bool,
                    signatures: Signatures) -> None:
    if module.path in seen:
        return
    seen.add(module.path)
    out.extend(module.diagnostics)
    if module.ast is not None:
        out.extend(Analyser(module, is_main, signatures).run())
        if is_main:
            out.extend(check_identity(module, any(d.is_error for d in out)))
    for imported in module.imports.values():
        if imported is not None:
            _analyse_module(imported, out, seen, is_main=False, signatures=signatures)


class Analyser:
    """One module's analysis. `run()` returns its diagnostics.

    It walks the items; a `StatementChecker` walks the blocks and an `ExpressionChecker`
    types the expressions, all reporting through one `Reporter`.
    """

    def __init__(self, module: Module, is_main: bool,
                 signatures: Signatures | None = None) -> None:
        assert module.ast is not None
        self.module = module
        self.ast = module.ast
        self.is_main = is_main
        self.report = Reporter(module.source.path)
        self.error = self.report.error
        self.warn = self.report.warn
        self.types = ExpressionChecker(self.report, module)
        self.blocks = StatementChecker(self.report, self.types, module,
                                       signatures if signatures is not None else Signatures())
        self.targets = TargetChecker(self.report, self.types, module, is_main)
        # The type of each task parameter's default, where it is known (task, name) -> type.
        self.task_param_types: dict[tuple[int, str], str] = {}
        self.scope: dict[str, Symbol] = {"run_id": Symbol("builtin", "string"),
                                         **self.targets.builtins()}
        # The items of each kind, in file order (one pass over a file of thousands of steps).
        self.items: dict[str, list] = {}
        for item in self.ast.items:
            self.items.setdefault(item.kind, []).append(item)

    # ------------------------------------------------------------------ driver

    def run(self) -> list[Diagnostic]:
        """Check the whole module; its diagnostics in the order they were found."""
        self.check_definitions()
        check_recursion(self.module, self.report)
        for item in self.ast.items:
            _ITEMS[item.kind](self, item)
        # The header is rendered once the params and lets are known, wherever they stand:
        # it usually comes first, above the params its title names.
        for item in self.items.get("runbook", ()):
            self.visit_header(item)
        tasks, finals = self.items.get("task", ()), self.items.get("finally", ())
        # Task bodies and `finally` see every variable the file sets.
        run_wide_vars = self.collect_assigned() if tasks or finals else {}
        for task in tasks:
            self.visit_task_body(task, run_wide_vars)
        for item in finals:
            ctx = Context(self.full_scope(run_wide_vars), in_finally=True, step="finally")
            self.blocks.statements(item.body, ctx)
        self.check_unused()
        return self.report.out

    def check_definitions(self) -> None:
        """Headers, policies and names defined twice, reserved or taken by runbook itself."""
        headers = self.items.get("runbook", [])
        for extra in headers[1:]:
            self.error("E261", "a file has at most one `runbook` header", extra.span)
        policies = self.items.get("default_policy", [])
        for extra in policies[1:]:
            self.error("E110", "the default failure policy is set twice (first at line "
                       f"{policies[0].span.line})", extra.span, "keep one `on_failure` line")
        defined: dict[str, n.Ident] = {}
        # With an inventory, `hostvars` and `groups` are runbook's own names.
        builtins = BUILTIN_NAMES | (set(INVENTORY_NAMES) if self.targets.builtins() else set())
        for item in self.ast.items:
            ident = getattr(item, "name", None) if item.kind != "import" else item.alias
            if ident is None or item.kind in ("step", "check_step", "gate"):
                continue
            self.report.check_reserved(ident, item.kind)
            if ident.name in builtins and item.kind != "task":
                self.error("E204", f"`{ident.name}` is defined by runbook itself and cannot "
                           f"name a {item.kind}", ident.span, "use another name")
            elif ident.name in defined:
                self.error("E202", f"`{ident.name}` is defined twice (first at line "
                           f"{defined[ident.name].span.line})", ident.span)
            else:
                defined[ident.name] = ident
        units: dict[str, n.Ident] = {}
        every_unit = self.ast.units
        for unit in every_unit:
            self.report.check_reserved(unit.name, "step")
            if unit.name.name in units:
                self.error("E201", f"duplicate step name `{unit.name.name}` (first at line "
                           f"{units[unit.name.name].span.line})", unit.name.span,
                           "step, check and gate names are unique: they address the step in "
                           "`--from`, `resume` and the transcript")
            else:
                units[unit.name.name] = unit.name
        if not self.is_main:
            for unit in every_unit:
                self.warn("W305", f"`{unit.name.name}` in an imported module never runs: "
                          "a module contributes tasks and lets", unit.name.span)

    def collect_assigned(self) -> dict[str, Symbol]:
        """Every `into`/`set` variable in the file, for task bodies and `finally`."""
        return assigned_variables(self.ast)

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
                self.types.check(part, ctx)

    def visit_import(self, item: n.Import) -> None:
        # A module's lets are reached as `alias.name`, its tasks as `alias.task(…)`.
        self.scope[item.alias.name] = Symbol("module", "module", item.alias.span)

    def visit_targets(self, item: n.Targets) -> None:
        self.targets.visit_targets(item)

    def visit_param(self, item: n.Param) -> None:
        declared = None
        if item.type is not None:
            declared = item.type.name
            if declared not in TYPES:
                self.error("E233", f"unknown type `{declared}` for param `{item.name.name}`",
                           item.type.span, "types: " + ", ".join(TYPES))
                declared = None
        ctx = Context(dict(self.scope), in_param=True)
        default = item.default
        default_type = self.types.check(default, ctx) if default is not None else None
        for name in names_in(default) if default is not None else []:
            symbol = self.scope.get(name)
            if symbol is not None and symbol.kind != "param":
                # Params are resolved before secrets and lets exist (LANGUAGE.md §8).
                self.error("E205", f"the default of param `{item.name.name}` reads "
                           f"{symbol.kind} `{name}`; a param's default can only use params "
                           "defined before it", name_node(default, name).span)
        if declared and default_type and not assignable(default_type, declared):
            assert default is not None
            self.error("E230", f"param `{item.name.name}` is {article(declared)}, but its "
                       "default is "
                       f"{article(default_type)}", default.span)
        ptype = declared or default_type or "string"
        self.check_param_constraints(item, ptype)
        self.scope[item.name.name] = Symbol("param", ptype, item.name.span,
                                            module_input=not self.is_main)

    def check_param_constraints(self, item: n.Param, ptype: str) -> None:
        default = constant(item.default)
        # Where a message about the default points (only read when there is a default).
        at_default = item.default.span if item.default is not None else item.span
        if item.choices is not None:
            self.types.check(item.choices, Context(dict(self.scope), in_param=True))
            choices = [constant(c) for c in item.choices.items]
            for choice, node in zip(choices, item.choices.items, strict=True):
                if choice is NOTHING:
                    self.error("E231", "`choices` takes constant values", node.span)
                elif not assignable(type_name(choice), ptype):
                    self.error("E231", f"choice {show(choice)} is not {article(ptype)}", node.span)
            known = [c for c in choices if c is not NOTHING]
            if default is not NOTHING and len(known) == len(choices) and \
                    not any(same_value(default, c) for c in choices):
                self.error("E231", f"the default {show(default)} of param `{item.name.name}` is "
                           "not one of its choices", at_default,
                           "choices: " + ", ".join(show(c) for c in choices))
        if item.pattern is not None:
            text = pattern_text(item.pattern)
            if text is None:
                self.error("E232", "a `pattern` cannot be interpolated", item.pattern.span)
                return
            if ptype != "string":
                # The run matches the text of a string param only: any other type is refused
                # before the first step (LANGUAGE.md §8).
                self.error("E232", f"a `pattern` applies to string params; param "
                           f"`{item.name.name}` is {article(ptype)}", item.pattern.span,
                           "use `choices`, or make the param a string")
                return
            try:
                compile_pattern(text)
            except PatternError as error:
                self.error("E232", f"invalid pattern: {error.message}", item.pattern.span,
                           error.hint)
                return
            # The run's own reading of a pattern, imported here: it brings the evaluator,
            # which a check of a file without a pattern never needs.
            from ..evaluation.params import pattern_matches

            if default is not NOTHING and isinstance(default, str) \
                    and not pattern_matches(text, default):
                self.error("E232", f"the default {show(default)} of param `{item.name.name}` does "
                           f"not match its pattern `{text}`", at_default)

    def visit_secret(self, item: n.Secret) -> None:
        # An empty or interpolated source is reported by the transformer, where it is parsed.
        self.scope[item.name.name] = Symbol("secret", "string", item.name.span, secret=True,
                                            module_input=not self.is_main)

    def visit_let(self, item: n.Let) -> None:
        ctx = Context(dict(self.scope))
        before = set(names_in(item.value))
        ltype = self.types.check(item.value, ctx)
        secret = any(self.scope.get(name, Symbol("", None)).secret for name in before)
        self.scope[item.name.name] = Symbol("let", ltype, item.name.span, secret=secret)

    def visit_task(self, item: n.Task) -> None:
        for param in item.params:
            self.report.check_reserved(param.name, "task parameter")
            if param.default is not None:
                ptype = self.types.check(param.default, Context(dict(self.scope)))
                if ptype is not None:
                    self.task_param_types[(id(item), param.name.name)] = ptype

    def visit_task_body(self, task: n.Task, run_wide_vars: dict[str, Symbol]) -> None:
        # A parameter with a default is of the default's type (as a param is): calls are
        # checked against it (E214), and so is the body.
        locals_ = {p.name.name: Symbol("task_param",
                                       self.task_param_types.get((id(task), p.name.name)),
                                       p.name.span, used=True)
                   for p in task.params}
        ctx = Context(self.full_scope(run_wide_vars), in_task=True, step=None, locals=locals_)
        self.blocks.statements(task.body, ctx)

    def visit_default_policy(self, item: n.DefaultPolicy) -> None:
        pass

    def visit_finally(self, item: n.Finally) -> None:
        pass  # walked last, once every variable of the file is known

    def visit_step(self, item: n.Step) -> None:
        ctx = Context(self.scope, step=item.name.name)
        if item.on is not None:
            self.targets.check_on(item, ctx)
            self.targets.check_shares(item, ctx)
            # What an instance sets stays with that host's instance and its undo.
            ctx = self.targets.instance_context(item, ctx)
        if item.loop_over is not None:
            self.types.expect_type(item.loop_over, ctx, "list", "a `for` step's list")
            loop_var = item.loop_var
            assert loop_var is not None  # the grammar gives `for X in …` both parts
            self.report.check_reserved(loop_var, "loop variable")
            ctx.locals[loop_var.name] = Symbol("loop", None, loop_var.span, used=True)
        self.types.check(item.title, ctx)
        if item.when is not None:
            self.types.expect_type(item.when, ctx, "bool", "`when`")
        conditional = item.when is not None
        self.step_attributes(item, ctx)
        body_ctx = ctx.inner(conditional=conditional)
        if item.kind == "check_step":
            self.blocks.probe(item.probe, item.expects, body_ctx)
            for part, what in ((item.within, "`within`"), (item.every, "`every`")):
                if part is not None:
                    self.types.expect_type(part, ctx, "duration", what)
                    self.types.check_bounds(part, what, positive=True)
        else:
            self.blocks.statements(item.body, body_ctx)
        if item.rollback is None and item.on_failure is None:
            return
        undo_ctx = ctx.inner(conditional=True)
        self.blocks.statements(item.rollback, undo_ctx)
        if item.on_failure is not None:
            self.blocks.statements(item.on_failure.body, undo_ctx)
            if item.on_failure.policy == "rollback" and item.on_failure.body is None \
                    and item.rollback is None and item.kind == "check_step":
                pass  # a check undoes nothing itself; the saga unwinds earlier steps

    visit_check_step = visit_step

    def step_attributes(self, item: n.Step, ctx: Context) -> None:
        if item.timeout is not None:
            self.types.expect_type(item.timeout, ctx, "duration", "`timeout`")
            self.types.check_bounds(item.timeout, "`timeout`", positive=True)
        if item.retry is not None:
            self.types.expect_type(item.retry.count, ctx, "int", "`retry`")
            self.types.check_bounds(item.retry.count, "`retry`", positive=False)
            if item.retry.every is not None:
                self.types.expect_type(item.retry.every, ctx, "duration", "`retry … every`")
                self.types.check_bounds(item.retry.every, "`retry … every`", positive=False)
            if item.retry.backoff is not None:
                self.types.expect_type(item.retry.backoff, ctx, "number", "`backoff`")
        for var in item.env or []:
            self.types.check(var.value, ctx)
        for part in (item.dir, item.description):
            if part is not None:
                self.types.check(part, ctx)

    def visit_gate(self, item: n.Gate) -> None:
        ctx = Context(self.scope, step=item.name.name)
        self.types.check(item.title, ctx)
        if item.when is not None:
            self.types.expect_type(item.when, ctx, "bool", "`when`")
        if item.timeout is not None:
            self.types.expect_type(item.timeout, ctx, "duration", "`timeout`")
            self.types.check_bounds(item.timeout, "`timeout`", positive=True)
        if item.self_approval is not None:
            self.types.expect_type(item.self_approval, ctx, "bool", "`self_approval`")
        for part in (item.message, item.description):
            if part is not None:
                self.types.check(part, ctx)
        approvers = None
        if item.approvers is not None:
            self.types.check(item.approvers, ctx)
            values = [constant(a) for a in item.approvers.items]
            if not values:
                self.error("E251", f"gate `{item.name.name}` lists no approvers: nobody could "
                           "approve it", item.approvers.span,
                           "leave `approvers` out to let anyone approve")
            elif all(v is not NOTHING for v in values):
                approvers = set()
                for value, node in zip(values, item.approvers.items, strict=True):
                    if not isinstance(value, str) or not value:
                        self.error("E251", "approvers are names (non-empty strings)", node.span)
                    elif value in approvers:
                        self.error("E251", f"approver {show(value)} is listed twice",
                                   node.span, "each name counts once toward the quorum")
                    else:
                        approvers.add(value)
        if item.require is not None:
            self.types.expect_type(item.require, ctx, "int", "`require`")
            required = constant(item.require)
            if isinstance(required, int) and not isinstance(required, bool):
                if required < 1:
                    self.error("E250", f"`require {required}`: a gate needs at least one "
                               "approval", item.require.span)
                elif approvers is not None and required > len(approvers):
                    self.error("E250", f"gate `{item.name.name}` requires {required} approvals "
                               f"but names only {len(approvers)} approver"
                               f"{'s' if len(approvers) != 1 else ''}", item.require.span)

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


_ITEMS = {
    kind: getattr(Analyser, f"visit_{kind}")
    for kind in ("runbook", "import", "targets", "param", "secret", "let", "task",
                 "default_policy", "finally", "step", "check_step", "gate")
}
