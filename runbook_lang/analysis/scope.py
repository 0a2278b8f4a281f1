"""What the analyser knows while it walks: symbols, the scope at a place, and its findings.

`Reporter` collects one module's diagnostics; the analyser and the checkers it holds all
report through the same one, so every finding ends up in one list.
"""

from __future__ import annotations

from ..dataclass import dataclass, field
from ..syntax import nodes as n
from ..syntax.diagnostics import Diagnostic, at_span
from ..syntax.lexicon import RESERVED
from ..syntax.walk import assigned, children

# Names the interpreter defines (run_status and failed_step in `finally`): never user names.
BUILTIN_NAMES = frozenset({"run_id", "run_status", "failed_step"})
FINALLY_NAMES = {"run_status": "string", "failed_step": "string"}


@dataclass
class Symbol:
    """A name in scope: what defined it, its type if known, and where it may be unset."""

    # param, secret, let, var, loop, task_param, probe, builtin, module, target (`host` and
    # `vars` inside an `on` step)
    kind: str
    type: str | None
    span: n.Span | None = None
    setter: str | None = None  # the step that sets a variable
    maybe_unset: bool = False
    secret: bool = False  # derived from a secret
    used: bool = False
    # A param or secret of an imported module: nothing sets it when the module is imported.
    module_input: bool = False
    # A task parameter while its task's signature is learnt (`tasks.py`): what the body
    # asks of it (signatures.Need) and where it reaches a command line (Landing).
    needs: list | None = None
    lands: list | None = None


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
    # Inside a param's default (which may read the params before it, also in a module).
    in_param: bool = False

    def lookup(self, name: str) -> Symbol | None:
        """The symbol a name refers to here (locals first)."""
        return self.locals.get(name) or self.scope.get(name)

    def inner(self, **changes) -> Context:
        """A copy for a nested block, with some fields changed."""
        new = object.__new__(Context)
        fields = new.__dict__
        fields.update(self.__dict__)
        fields["locals"] = dict(self.locals)
        fields["definite"] = set(self.definite)
        fields.update(changes)
        return new


class Reporter:
    """Collects the diagnostics of one file, in the order they are found."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.out: list[Diagnostic] = []

    def error(self, code: str, message: str, span: n.Span, *hints: str) -> None:
        """Record an error at a span of the file (empty hints are dropped)."""
        self.out.append(Diagnostic("error", code, message, at_span(self.path, span),
                                   tuple(h for h in hints if h)))

    def warn(self, code: str, message: str, span: n.Span, *hints: str) -> None:
        """Record a warning at a span of the file (empty hints are dropped)."""
        self.out.append(Diagnostic("warning", code, message, at_span(self.path, span),
                                   tuple(h for h in hints if h)))

    def check_reserved(self, ident: n.Ident | None, what: str) -> None:
        """E203 when a reserved word names something."""
        if ident is not None and ident.name in RESERVED:
            what = {"import": "module alias"}.get(what, what.replace("_", " "))
            article = "an" if what[0] in "aeiou" else "a"
            self.error("E203", f"`{ident.name}` is a reserved word and cannot name {article} "
                       f"{what}", ident.span, "pick another name")


def assigned_variables(ast: n.Runbook) -> dict[str, Symbol]:
    """Every `into`/`set` variable in a file, with the step that sets it (None in a task)."""
    found: dict[str, Symbol] = {}

    def walk(statements, step: str | None) -> None:
        for st in statements or []:
            for ident in assigned(st):
                if ident.name not in BUILTIN_NAMES:  # refused where it is assigned
                    found.setdefault(ident.name, Symbol("var", None, ident.span, step, True))
            for body in children(st):
                walk(body, step)

    for item in ast.items:
        if item.kind == "step" and item.on is not None:
            continue  # names an instance on a host sets are that instance's own
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


def instance_variables(ast: n.Runbook) -> dict[str, str]:
    """Variables set inside steps that run `on` hosts: name -> the first such step. They
    belong to each host's instance, not to the run."""
    found: dict[str, str] = {}

    def walk(statements, step: str) -> None:
        for st in statements or []:
            for ident in assigned(st):
                found.setdefault(ident.name, step)
            for body in children(st):
                walk(body, step)

    for item in ast.of("step"):
        if item.on is not None:
            walk(item.body, item.name.name)
            walk(item.rollback, item.name.name)
            if item.on_failure is not None:
                walk(item.on_failure.body, item.name.name)
    return found
