"""What each name in a runbook refers to: the index behind hover, definition and completion.

One walk over a module's AST records every definition (params, secrets, lets, tasks and
their parameters, steps, checks, gates, imports, `into`/`set` variables, loop variables)
and every reference to one (names in expressions and interpolations, task calls and their
arguments, `ns.let`, builtin calls, step names compared with `failed_step`), each with its
span. Scoping follows LANGUAGE.md §4: a task's parameters and a loop's variable first, then
the run-wide names.
"""

from __future__ import annotations

from typing import Any

from ..dataclass import dataclass, field
from ..syntax import nodes as n

# Names the interpreter defines, and the results a probe leaves for `expect` (LANGUAGE.md §4-5).
RUN_NAMES = ("run_id", "run_status", "failed_step")
RUN_PROBE_NAMES = ("exit_code", "stdout", "stderr", "duration")
HTTP_PROBE_NAMES = ("status", "body", "headers", "duration")


@dataclass(frozen=True)
class Definition:
    """A defined name: its kind, the identifier that defines it, its node and its module."""

    kind: str  # param secret let task task_param step check gate import var loop
    name: str
    span: n.Span
    node: Any  # the AST node that defines it
    module: Any  # the loader's Module the definition lives in


@dataclass(frozen=True)
class Builtin:
    """A name or function the language itself provides (`run_id`, `stdout`, `len(…)`)."""

    kind: str  # run_name probe function
    name: str
    detail: str = ""  # for a probe name: "run" or "http"


@dataclass(frozen=True)
class Occurrence:
    """A place in the source that names something: a definition or a reference to one."""

    span: n.Span
    role: str  # definition reference import_path
    target: Definition | Builtin | None
    name: str


@dataclass
class Index:
    """Definitions and occurrences of one module (its imports are indexed on demand)."""

    module: Any
    top: dict[str, Definition] = field(default_factory=dict)
    tasks: dict[str, Definition] = field(default_factory=dict)
    units: dict[str, Definition] = field(default_factory=dict)
    variables: dict[str, list[Definition]] = field(default_factory=dict)
    occurrences: list[Occurrence] = field(default_factory=list)

    def at(self, offset: int) -> Occurrence | None:
        """The innermost occurrence whose span holds `offset` (its end included)."""
        best = None
        for occ in self.occurrences:
            if occ.span.start <= offset <= occ.span.end and (
                    best is None or occ.span.end - occ.span.start
                    <= best.span.end - best.span.start):
                best = occ
        return best

    def variable(self, name: str, offset: int) -> Definition | None:
        """The assignment of variable `name` nearest before `offset`, else its first one."""
        found = self.variables.get(name)
        if not found:
            return None
        before = [d for d in found if d.span.start <= offset]
        return before[-1] if before else found[0]

    def module_index(self, alias: str) -> Index | None:
        """The index of the module imported as `alias` (None when it did not load)."""
        imported = getattr(self.module, "imports", {}).get(alias)
        if imported is None or imported.ast is None:
            return None
        return index_module(imported)

    def scope_at(self, offset: int) -> dict[str, Definition | Builtin]:
        """Every name that an expression at `offset` may read, innermost first."""
        names: dict[str, Definition | Builtin] = {}
        ast = self.module.ast
        if ast is None:
            return names
        for item in ast.items:
            if not item.span.start <= offset <= item.span.end:
                continue
            if item.kind == "task":
                for param in item.params:
                    names.setdefault(param.name.name, self._def("task_param", param.name, param))
            if item.kind in ("step", "check_step") and item.loop_var is not None:
                names.setdefault(item.loop_var.name, self._def("loop", item.loop_var, item))
            for loop in _loops_around(item, offset):
                names.setdefault(loop.var.name, self._def("loop", loop.var, loop))
            probe = _probe_around(item, offset)
            if probe is not None:
                for name in RUN_PROBE_NAMES if probe == "run" else HTTP_PROBE_NAMES:
                    names.setdefault(name, Builtin("probe", name, probe))
            if item.kind == "finally":
                names.setdefault("run_status", Builtin("run_name", "run_status"))
                names.setdefault("failed_step", Builtin("run_name", "failed_step"))
        for name, definition in self.top.items():
            names.setdefault(name, definition)
        for name in self.variables:
            names.setdefault(name, self.variable(name, offset))  # type: ignore[arg-type]
        names.setdefault("run_id", Builtin("run_name", "run_id"))
        return names

    def _def(self, kind: str, ident: n.Ident, node) -> Definition:
        return Definition(kind, ident.name, ident.span, node, self.module)


_CACHE: dict[int, tuple[object, Index]] = {}


def index_module(module) -> Index:
    """The index of a loaded module (cached per parsed AST: imports are shared)."""
    cached = _CACHE.get(id(module.ast))
    if cached is not None and cached[0] is module.ast:
        return cached[1]
    index = _Indexer(module).build()
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[id(module.ast)] = (module.ast, index)
    return index


class _Indexer:
    """Builds an Index in two passes: definitions first, then references (which need them)."""

    def __init__(self, module) -> None:
        self.index = Index(module)
        self.module = module

    def build(self) -> Index:
        ast = self.module.ast
        if ast is None:
            return self.index
        self.collect_definitions(ast)
        for item in ast.items:
            self.visit_item(item)
        return self.index

    # ------------------------------------------------------------------ definitions

    def define(self, kind: str, ident: n.Ident, node) -> Definition:
        definition = Definition(kind, ident.name, ident.span, node, self.module)
        self.index.occurrences.append(Occurrence(ident.span, "definition", definition,
                                                 ident.name))
        return definition

    def collect_definitions(self, ast: n.Runbook) -> None:
        for item in ast.items:
            if item.kind in ("param", "secret", "let"):
                self.index.top.setdefault(item.name.name, self.define(item.kind, item.name, item))
            elif item.kind == "import":
                self.index.top.setdefault(item.alias.name,
                                          self.define("import", item.alias, item))
            elif item.kind == "task":
                self.index.tasks.setdefault(item.name.name, self.define("task", item.name, item))
            elif item.kind in ("step", "check_step", "gate"):
                kind = {"check_step": "check"}.get(item.kind, item.kind)
                self.index.units.setdefault(item.name.name, self.define(kind, item.name, item))
        for item in ast.items:
            for statement in _all_statements(item):
                for ident in _assigned(statement):
                    self.index.variables.setdefault(ident.name, []).append(
                        self.define("var", ident, statement))
        for found in self.index.variables.values():
            found.sort(key=lambda d: d.span.start)

    # ------------------------------------------------------------------ references

    def visit_item(self, item) -> None:
        scope: dict[str, Definition | Builtin] = {}
        if item.kind == "import":
            target = self.index.top.get(item.alias.name)
            self.index.occurrences.append(Occurrence(item.path_span, "import_path", target,
                                                     item.path))
            return
        if item.kind == "task":
            for param in item.params:
                scope[param.name.name] = self.define("task_param", param.name, param)
        if item.kind in ("step", "check_step") and item.loop_var is not None:
            scope[item.loop_var.name] = self.define("loop", item.loop_var, item)
        if item.kind == "finally":
            scope["run_status"] = Builtin("run_name", "run_status")
            scope["failed_step"] = Builtin("run_name", "failed_step")
        self.visit_fields(item, scope)

    def visit_fields(self, node, scope) -> None:
        for key, value in node.__dict__.items():
            # Identifiers are definitions (indexed already) or handled where they stand.
            if key in ("span", "path_span") or isinstance(value, n.Ident):
                continue
            if key == "expects":
                self.visit_expects(node, value, scope)
            elif isinstance(value, list):
                for child in value:
                    if isinstance(child, n.Node):
                        self.visit(child, scope)
            elif isinstance(value, n.Node):
                self.visit(value, scope)

    def visit_expects(self, node, expects, scope) -> None:
        probe = getattr(node, "probe", None)
        inner = dict(scope)
        if probe is not None:
            for name in RUN_PROBE_NAMES if probe.kind == "run" else HTTP_PROBE_NAMES:
                inner.setdefault(name, Builtin("probe", name, probe.kind))
        for expect in expects:
            self.visit(expect, inner)

    def visit(self, node, scope) -> None:
        kind = node.kind
        if kind == "name":
            self.reference(node.span, node.name, self.resolve(node.name, node.span.start, scope))
            return
        if kind == "call":
            self.reference(node.func.span, node.func.name, Builtin("function", node.func.name))
        elif kind == "field" and node.target.kind == "name" and \
                node.target.name in self.index.top and \
                self.index.top[node.target.name].kind == "import":
            self.module_member(node)
        elif kind == "task_call":
            self.task_call(node, scope)
        elif kind == "binary":
            self.step_names(node)
        elif kind == "for":
            scope = dict(scope)
            scope[node.var.name] = self.define("loop", node.var, node)
        self.visit_fields(node, scope)

    def reference(self, span: n.Span, name: str, target) -> None:
        self.index.occurrences.append(Occurrence(span, "reference", target, name))

    def resolve(self, name: str, offset: int, scope) -> Definition | Builtin | None:
        if name in scope:
            return scope[name]
        if name in self.index.top:
            return self.index.top[name]
        variable = self.index.variable(name, offset)
        if variable is not None:
            return variable
        if name in RUN_NAMES:
            return Builtin("run_name", name)
        return None

    def module_member(self, node) -> None:
        """`alias.name` (a FieldAccess on a module alias): a let of the imported module."""
        alias = node.target.name
        imported = self.index.module_index(alias)
        target = imported.top.get(node.name) if imported is not None else None
        span = node.span
        start = span.end - len(node.name)
        member = n.Span.make(line=span.end_line, column=span.end_column - len(node.name),
                             end_line=span.end_line, end_column=span.end_column,
                             start=start, end=span.end)
        self.reference(member, node.name, target)

    def task_call(self, node: n.TaskCall, scope) -> None:
        task = None
        if node.namespace is None:
            task = self.index.tasks.get(node.name.name)
        else:
            alias = self.index.top.get(node.namespace.name)
            self.reference(node.namespace.span, node.namespace.name,
                           alias if alias is not None and alias.kind == "import" else None)
            imported = self.index.module_index(node.namespace.name)
            task = imported.tasks.get(node.name.name) if imported is not None else None
        self.reference(node.name.span, node.name.name, task)
        params = {p.name.name: p for p in task.node.params} if task is not None else {}
        for arg in node.args:
            param = params.get(arg.name.name)
            target = Definition("task_param", param.name.name, param.name.span, param,
                                task.module) if param is not None and task is not None else None
            self.reference(arg.name.span, arg.name.name, target)

    def step_names(self, node: n.Binary) -> None:
        """`failed_step == "migrate"` (or `in [...]`): the strings name steps."""
        if node.op not in ("==", "!=", "in", "not in"):
            return
        sides = (node.left, node.right)
        if not any(side.kind == "name" and side.name == "failed_step" for side in sides):
            return
        for side in sides:
            strings = side.items if side.kind == "list" else [side]
            for string in strings:
                text = string.constant() if string.kind == "string" else None
                if text is not None:
                    unit = self.index.units.get(text)
                    if unit is not None:
                        self.reference(string.span, unit.name, unit)


# ---------------------------------------------------------------------- walks


def _all_statements(item):
    """Every statement inside an item, nested ones included, with their probes."""
    bodies = []
    for key in ("body", "rollback"):
        value = getattr(item, key, None)
        if value:
            bodies.append(value)
    on_failure = getattr(item, "on_failure", None)
    if on_failure is not None and on_failure.body:
        bodies.append(on_failure.body)
    if getattr(item, "probe", None) is not None:
        bodies.append([item.probe])
    stack = [s for body in bodies for s in body]
    while stack:
        statement = stack.pop()
        yield statement
        if statement.kind == "if":
            for branch in statement.branches:
                stack.extend(branch.body)
            stack.extend(statement.otherwise or [])
        elif statement.kind == "for":
            stack.extend(statement.body)
        elif statement.kind in ("check", "watch") and statement.probe is not None:
            stack.append(statement.probe)


def _assigned(statement) -> list[n.Ident]:
    if statement.kind in ("run", "http") and statement.into is not None:
        return [statement.into]
    if statement.kind == "set":
        return [statement.name]
    return []


def _loops_around(item, offset: int) -> list[n.For]:
    return [s for s in _all_statements(item)
            if s.kind == "for" and s.span.start <= offset <= s.span.end]


def _probe_around(item, offset: int) -> str | None:
    """"run" or "http" when `offset` is inside a check or watch with that probe."""
    if item.kind == "check_step" and item.probe is not None:
        return item.probe.kind
    for statement in _all_statements(item):
        if statement.kind in ("check", "watch") and statement.probe is not None \
                and statement.span.start <= offset <= statement.span.end:
            return statement.probe.kind
    return None
