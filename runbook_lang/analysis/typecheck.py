"""Expression types and names: what an expression yields, and whether its names exist.

`ExpressionChecker` is a collaborator of the `Analyser`: it reports through the analyser's
`Reporter` and knows types only where they are certain (anything else is `None`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..evaluation.builtins import BUILTINS
from ..evaluation.regex import PatternError, compile_pattern
from ..syntax import nodes as n
from ..syntax.lexicon import RESERVED
from ..syntax.loader import Module
from ..syntax.walk import names_in
from .constants import signed_constant
from .quoting import in_stdlib
from .scope import FINALLY_NAMES, Context, Reporter, Symbol, assigned_variables, instance_variables
from .signatures import Landing, Need, satisfies

# Names runbook defines for steps that run on hosts (LANGUAGE.md §11): where they exist.
TARGET_NAMES = {
    "host": "inside a step that runs `on` hosts (and its undo), where it is the current "
            "host's name",
    "vars": "inside a step that runs `on` hosts (and its undo), where it holds the current "
            "host's inventory vars",
    "hostvars": "when the runbook names an inventory with `targets`",
    "groups": "when the runbook names an inventory with `targets`",
}

NUMERIC = {"int", "float", "number"}
# Types whose values have no fields (`.name`); all but strings and lists have no items (`[i]`).
SCALARS = frozenset({"int", "float", "number", "bool", "duration", "string", "list"})
RUN_PROBE = {"exit_code": "int", "stdout": "string", "stderr": "string", "duration": "duration"}
HTTP_PROBE = {"status": "int", "body": "string", "headers": None, "duration": "duration"}


class ExpressionChecker:
    """Type and name checks of the expressions of one module."""

    def __init__(self, report: Reporter, module: Module) -> None:
        assert module.ast is not None
        self.report = report
        self.error = report.error
        self.warn = report.warn
        self.module = module
        self.ast = module.ast

    def expect_type(self, expr, ctx: Context, wanted: str, what: str) -> None:
        """Check an expression and report it when its type is not `wanted`."""
        found = self.check(expr, ctx)
        if found is None:
            self.learn(expr, ctx, wanted, what)
            return
        if satisfies(found, wanted):
            return
        self.error("E242", f"{what} expects {article(wanted)}, found {article(found)}", expr.span)

    def learn(self, expr, ctx: Context, wanted: str, what: str, compare: bool = False) -> None:
        """While a task's signature is learnt: a parameter of no known type, used where
        `wanted` is needed, needs it from every call (tasks.py)."""
        if expr.kind != "name":
            return
        sym = ctx.lookup(expr.name)
        if sym is not None and sym.needs is not None and sym.type is None:
            sym.needs.append(Need(wanted, what, self.module.source.path, expr.span, compare))

    def mentions_secret(self, expr, ctx: Context) -> bool:
        """Whether an expression reads a secret, directly or through a let or variable."""
        return any((sym := ctx.lookup(name)) is not None and sym.secret
                   for name in names_in(expr))

    def check(self, expr, ctx: Context) -> str | None:
        """Check an expression; return its type when it is known statically."""
        return _CHECKS[expr.kind](self, expr, ctx)

    def expr_literal(self, e: n.Literal_, ctx: Context) -> str:
        return e.type

    def expr_duration(self, e: n.Duration, ctx: Context) -> str:
        return "duration"

    def expr_string(self, e: n.String, ctx: Context) -> str:
        for part in e.parts:
            if part.kind == "interpolation":
                self.check(part.expr, ctx)
                if ctx.in_command:
                    self.command_warnings(part.expr, ctx)
        return "string"

    def command_warnings(self, expr, ctx: Context) -> None:
        """W300/W301 for an interpolation inside a `run` command."""
        # A shipped stdlib task that runs code it is given documents that contract; the
        # warning is for runbooks, whose authors can act on it.
        if expr.kind == "call" and expr.func.name == "raw" and not in_stdlib(self.module.path):
            self.warn("W300", "`raw()` inserts text into the command without shell quoting",
                      expr.span, "make sure the value can never come from untrusted input")
        for name in names_in(expr):
            sym = ctx.lookup(name)
            if sym is not None and sym.lands is not None:
                # A task parameter reaches the command line here: a call that passes it a
                # secret is warned about (tasks.py).
                sym.lands.append(Landing(self.module.source.path, expr.span))
            if sym is not None and sym.secret:
                self.warn("W301", f"secret `{name}` is interpolated into a command line",
                          expr.span, "command lines show up in process lists: pass it "
                          f"through `env {{ {name.upper()} = {name} }}` and use ${name.upper()} in "
                          "the command")

    def expr_list(self, e: n.ListExpr, ctx: Context) -> str:
        for item in e.items:
            self.check(item, ctx)
        return "list"

    def expr_name(self, e: n.Name, ctx: Context) -> str | None:
        if e.name == n.ERROR_NAME:
            return None
        sym = ctx.lookup(e.name)
        if sym is None:
            if e.name in FINALLY_NAMES and not (ctx.in_finally or ctx.in_task):
                self.error("E262", f"`{e.name}` is only defined in `finally`", e.span)
            elif e.name in FINALLY_NAMES:
                return FINALLY_NAMES[e.name]
            elif e.name in ("host", "vars") and ctx.in_task:
                return None  # a task called from an `on` step sees them (else a run error)
            elif e.name in TARGET_NAMES:
                self.error("E263", f"`{e.name}` is only defined {TARGET_NAMES[e.name]}",
                           e.span, "a step runs on hosts with `step NAME \"Title\" on HOSTS "
                           "{ … }`" if e.name in ("host", "vars") else
                           "add `targets \"inventory.yaml\"` to the runbook")
            else:
                self.undefined(e, ctx)
            return None
        sym.used = True
        if sym.module_input and ctx.step is None and not ctx.in_param:
            what = "params" if sym.kind == "param" else "secrets"
            self.error("E206", f"`{e.name}` is a {sym.kind} of this module, and an imported "
                       f"module has no {what} of its own: nothing sets it", e.span,
                       "only the runbook that is run takes params and secrets; pass the value "
                       "to the task as an argument")
            return None
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
        """Report an undefined name, with the best hint available."""
        later = assigned_variables(self.ast).get(e.name) if ctx.step else None
        on_step = instance_variables(self.ast).get(e.name)
        hint = ""
        if e.name in RESERVED:
            hint = f"`{e.name}` is a reserved word: it never names a value"
        elif on_step is not None and later is None:
            hint = (f"it is set inside `on` step `{on_step}`: what an `on` step sets belongs to "
                    "each host's instance and its undo, not to the run")
        elif later is not None and later.setter:
            hint = f"it is set later, in step `{later.setter}`: names are defined in file order"
        else:
            names = set(ctx.scope) | set(ctx.locals)
            hint = suggest(e.name, names)
        self.error("E200", f"undefined name `{e.name}`", e.span, hint)

    def expr_field(self, e: n.FieldAccess, ctx: Context) -> str | None:
        if e.target.kind == "name":
            sym = ctx.lookup(e.target.name)
            if sym is not None and sym.kind == "module":
                return self.module_member(e, sym)
            if sym is not None and sym.type == "response":
                sym.used = True
                self.check(e.target, ctx)
                return {"status": "int", "body": "string"}.get(e.name)
        target = self.check(e.target, ctx)
        if target in SCALARS:
            self.error("E241", f"{article(target)} has no fields: `.{e.name}` cannot be read",
                       e.span, "fields belong to json() values, `http … into` results and "
                       "modules")
        return None

    def module_member(self, e: n.FieldAccess, sym: Symbol) -> str | None:
        """`alias.let` of an imported module."""
        sym.used = True
        alias = e.target.name  # type: ignore[union-attr]
        module = self.module.imports.get(alias)
        if module is None or module.ast is None:
            return None
        lets = {let.name.name for let in module.ast.of("let")}
        if e.name not in lets:
            self.error("E200", f"module `{alias}` has no let `{e.name}`", e.span,
                       suggest(e.name, lets))
        return None

    def expr_index(self, e: n.Index, ctx: Context) -> None:
        target = self.check(e.target, ctx)
        self.check(e.index, ctx)
        if target in SCALARS - {"string", "list"}:
            self.error("E241", f"{article(target)} cannot be indexed", e.span,
                       "index lists, strings and json() values")
        return None

    def expr_call(self, e: n.Call, ctx: Context) -> str | None:
        for arg in e.args:
            self.check(arg, ctx)
        builtin = BUILTINS.get(e.func.name)
        if builtin is None:
            self.error("E270", f"unknown function `{e.func.name}`", e.func.span,
                       suggest(e.func.name, BUILTINS) or
                       "builtins: " + ", ".join(sorted(BUILTINS)))
            return None
        low, high = builtin.min_args, builtin.max_args
        if not low <= len(e.args) <= high:
            wanted = str(low) if low == high else f"{low} or {high}"
            self.error("E271", f"`{e.func.name}()` takes {wanted} argument"
                       f"{'s' if high != 1 else ''}, given {len(e.args)}", e.span)
        return builtin.result

    def expr_unary(self, e: n.Unary, ctx: Context) -> str | None:
        operand = self.check(e.operand, ctx)
        if e.op == "not":
            if operand is None:
                self.learn(e.operand, ctx, "bool", "`not`")
            elif operand != "bool":
                self.error("E241", f"`not` needs a bool, found {article(operand)}", e.operand.span)
            return "bool"
        if operand not in (None, "int", "float", "number", "duration"):
            self.error("E241", f"unary `-` needs a number, found {article(operand)}",
                       e.operand.span)
        return operand

    def expr_binary(self, e: n.Binary, ctx: Context) -> str | None:
        left, right = self.check(e.left, ctx), self.check(e.right, ctx)
        op = e.op
        if op in ("and", "or"):
            for side, node in ((left, e.left), (right, e.right)):
                if side is None:
                    self.learn(node, ctx, "bool", f"`{op}`")
                elif side != "bool":
                    self.error("E241", f"`{op}` needs bools, found {article(side)}", node.span)
            return "bool"
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if left is None and right is not None:
                self.learn(e.left, ctx, right, f"`{op}`", compare=True)
            elif right is None and left is not None:
                self.learn(e.right, ctx, left, f"`{op}`", compare=True)
            if left and right and not comparable(left, right):
                self.error("E240", f"cannot compare {article(left)} with {article(right)} "
                           f"using `{op}`",
                           e.span, "convert one side first, e.g. number(x) or str(x)")
            elif op not in ("==", "!=") and (left in ("bool", "list") or right in ("bool",
                                                                                   "list")):
                self.error("E240", f"`{op}` does not order {article(left or right)}", e.span)
            return "bool"
        if op in ("in", "not in"):
            if right not in (None, "list", "string"):
                self.error("E241", f"`{op}` needs a list or a string on its right, found "
                           f"{article(right)}", e.right.span)
            return "bool"
        if op == "contains":
            if left not in (None, "list", "string"):
                self.error("E241", f"`contains` needs a list or a string on its left, found "
                           f"{article(left)}", e.left.span)
            return "bool"
        if op == "matches":
            for side, node in ((left, e.left), (right, e.right)):
                if side is None:
                    self.learn(node, ctx, "string", "`matches`")
                elif side != "string":
                    self.error("E241", f"`matches` needs strings, found {article(side)}", node.span)
            if e.right.kind == "string":
                text = e.right.constant()
                if text is not None:
                    try:
                        compile_pattern(text)
                    except PatternError as error:
                        self.error("E232", f"invalid regular expression: {error.message}",
                                   e.right.span, error.hint)
            return "bool"
        return self.arithmetic(e, left, right)

    def check_bounds(self, expr, what: str, positive: bool) -> None:
        """E243 for a constant that is negative (or zero, where time must pass)."""
        value = signed_constant(expr)
        if value is None:
            return
        if value < 0 or (positive and value == 0):
            need = "more than zero" if positive else "zero or more"
            self.error("E243", f"{what} must be {need}", expr.span)

    def arithmetic(self, e: n.Binary, left: str | None, right: str | None) -> str | None:
        """The type of `+ - * /` over two known types, or an error."""
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
        self.error("E241", f"cannot apply `{op}` to {article(left)} and {article(right)}", e.span,
                   "use str(x) to join a value into text, or an interpolation \"{{x}}\""
                   if op == "+" and "string" in (left, right) else "")
        return None


def assignable(found: str, wanted: str) -> bool:
    """Whether a value of type `found` may stand where `wanted` is expected."""
    if found == wanted:
        return True
    if wanted == "float" and found in NUMERIC:
        return True
    return wanted == "int" and found == "number"


def comparable(left: str, right: str) -> bool:
    """Whether two types may be compared (ints and floats mix)."""
    if left == right:
        return True
    return left in NUMERIC and right in NUMERIC


def article(type_name: str | None) -> str:
    """A type name with its article, for messages: "an int"."""
    names = {"int": "an int", "float": "a float", "number": "a number", "string": "a string",
             "bool": "a bool", "duration": "a duration", "list": "a list",
             "module": "a module", None: "a value"}
    return names.get(type_name, f"a {type_name}")


def suggest(name: str, candidates) -> str:
    """A "did you mean" hint for a misspelt name, or ""."""
    import difflib  # only for a message

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


_CHECKS: dict[str, Callable[[ExpressionChecker, object, Context], str | None]] = {
    kind: getattr(ExpressionChecker, f"expr_{kind}")
    for kind in ("literal", "duration", "string", "list", "name", "field", "index", "call",
                 "unary", "binary")
}
