"""Static checks of targets: the `targets` item, `on HOSTS`, `batch`, `max_failures`, and the
names a step that runs on hosts can read (LANGUAGE.md §11, docs/targets.md).

`TargetChecker` is a collaborator of the `Analyser`, reporting through its `Reporter`. The
inventory itself was read by the loader (its problems are E300–E308 there); here the
runbook's use of it is checked: hosts and groups a step names (E309), the type and range of
`batch` and `max_failures` (E242, E243).
"""

from __future__ import annotations

from ..syntax import nodes as n
from ..syntax.loader import Module
from .constants import NOTHING, constant
from .scope import Context, Reporter, Symbol
from .typecheck import ExpressionChecker, suggest

# Inside a step that runs on hosts (and its undo): the current host and its vars.
INSTANCE_NAMES = {"host": "string", "vars": None}
# Everywhere, when the runbook has `targets`: every host's vars and every group's hosts.
INVENTORY_NAMES = {"hostvars": None, "groups": None}


class TargetChecker:
    """Checks what a runbook says about hosts."""

    def __init__(self, report: Reporter, types: ExpressionChecker, module: Module,
                 is_main: bool) -> None:
        assert module.ast is not None
        self.report = report
        self.types = types
        self.module = module
        self.ast = module.ast
        self.is_main = is_main

    @property
    def inventory(self):
        """The inventory `targets` names, when it could be read (None without one)."""
        return self.module.inventory

    def builtins(self) -> dict[str, Symbol]:
        """The run-wide names this module gets from its inventory."""
        if self.ast.targets is None or not self.is_main:
            return {}
        return {name: Symbol("builtin", vtype, used=True)
                for name, vtype in INVENTORY_NAMES.items()}

    def visit_targets(self, item: n.Targets) -> None:
        """At most one inventory, and only the main file's counts."""
        first = self.ast.targets
        if first is not None and item is not first:
            self.report.error("E110", "`targets` is given twice (first at line "
                              f"{first.span.line})", item.span,
                              "a runbook names one inventory; put every group in it")
        elif not self.is_main:
            self.report.warn("W309", "`targets` in an imported module has no effect: the "
                             "runbook that runs names the inventory", item.span)

    def instance_context(self, step: n.Step, ctx: Context) -> Context:
        """The scope of one host's instance: its own copy of the run-wide names (what it sets
        stays with the instance), with `host` and `vars`."""
        inner = Context(dict(ctx.scope), step=ctx.step, locals=dict(ctx.locals),
                        definite=set(ctx.definite))
        for name, vtype in INSTANCE_NAMES.items():
            hidden = ctx.scope.get(name)
            if hidden is not None and hidden.kind in ("param", "let", "secret"):
                self.report.warn("W310", f"inside `on` step `{step.name.name}`, `{name}` is "
                                 f"the current host's {'name' if name == 'host' else 'vars'}"
                                 f", not {hidden.kind} `{name}`", step.name.span,
                                 f"rename the {hidden.kind} to use it here")
            inner.locals[name] = Symbol("target", vtype, used=True)
        return inner

    def check_on(self, step: n.Step, ctx: Context) -> None:
        """HOSTS is a name or a list of names; known names must be in the inventory."""
        assert step.on is not None
        found = self.types.check(step.on, ctx)
        if found not in (None, "string", "list"):
            from .typecheck import article

            self.report.error("E242", f"`on` expects a host or group name, or a list of them; "
                              f"found {article(found)}", step.on.span)
            return
        value = constant(step.on)
        if value is NOTHING:
            return  # known when the step starts
        names = value if isinstance(value, list) else [value]
        nodes = step.on.items if step.on.kind == "list" else [step.on]
        if not names:
            self.report.error("E309", f"step `{step.name.name}` runs on no host: the list is "
                              "empty", step.on.span)
        for name, node in zip(names, nodes, strict=True):
            self.check_host_name(name, node)

    def check_host_name(self, name: object, node) -> None:
        if not isinstance(name, str) or not name:
            self.report.error("E309", "a host or group name is non-empty text", node.span)
            return
        inventory = self.inventory
        if inventory is not None:
            if name in inventory.hosts or name in inventory.groups:
                return
            # Named as the `targets` line writes it: the same message from any directory.
            written = self.ast.targets.path if self.ast.targets is not None else inventory.path
            self.report.error("E309", f"no host or group named `{name}` in inventory "
                              f"{written}", node.span,
                              suggest(name, [*inventory.hosts, *inventory.groups]))
            return
        if self.ast.targets is not None:
            return  # the inventory could not be read: reported where it is
        from ..targets.connection import SettingError, check_host_name

        try:
            check_host_name(name)
        except SettingError as error:
            self.report.error("E309", f"`{name}` cannot be a host: {error}", node.span,
                              "without `targets`, each name is given to ssh as the "
                              "destination: an ssh_config alias or a host name")

    def check_shares(self, step: n.Step, ctx: Context) -> None:
        """`batch` and `max_failures`: an int or a percentage text, in range."""
        for expr, what, least in ((step.batch, "batch", 1), (step.max_failures,
                                                             "max_failures", 0)):
            if expr is None:
                continue
            found = self.types.check(expr, ctx)
            if found not in (None, "int", "string"):
                from .typecheck import article

                self.report.error("E242", f"`{what}` expects a number of hosts (an int) or a "
                                  f"percentage such as \"25%\"; found {article(found)}",
                                  expr.span)
                continue
            value = constant(expr)
            if value is NOTHING:
                continue
            from ..targets.batches import ShareError, parse_share

            try:
                parse_share(value, what, least=least)
            except ShareError as error:
                code = "E242" if isinstance(value, str) and "%" not in value else "E243"
                self.report.error(code, str(error), expr.span)
