"""The AST: immutable records, a `kind` tag on each node and a source span on every node.

Nodes are data. The analyser, planner and interpreter dispatch on `kind`; nodes carry no
behaviour beyond small helpers. `to_data` gives a node's JSON document (`runbook check
--ast`) and `from_data` reads one back; `schema.json_schema()` publishes the shape for tools.
The node classes are plain records (`frozen.Frozen`), not pydantic models: importing pydantic
and building 47 models cost ~100 ms at every start of `runbook run` and `check`, for
validation the parser never needs (docs/decisions.md).
"""

from __future__ import annotations

import re

from ..hints import TYPE_CHECKING
from .frozen import Frozen
from .source import Span

if TYPE_CHECKING:
    from typing import Any, Literal

# The name of the placeholder that stands where an expression could not be parsed: the
# analyser gives it no type, so the error already reported is not followed by others.
ERROR_NAME = "<error>"


class Node(Frozen):
    """Base of every AST node: immutable, no unknown fields, a span into the source."""

    span: Span


class Ident(Node):
    """A name as written, with its own span (used where a name is defined or referenced)."""

    kind: Literal["ident"] = "ident"
    name: str


# ------------------------------------------------------------------ expressions


class Literal_(Node):
    """A number, boolean or plain value."""

    kind: Literal["literal"] = "literal"
    value: bool | int | float
    type: Literal["int", "float", "bool"]


class Duration(Node):
    """A duration literal such as `1h30m`, kept in milliseconds and as written."""

    kind: Literal["duration"] = "duration"
    ms: int
    text: str


class Text(Node):
    """A literal piece of a string."""

    kind: Literal["text"] = "text"
    value: str


class Interpolation(Node):
    """A `{{ expr }}` inside a string; its expression's spans point into the string."""

    kind: Literal["interpolation"] = "interpolation"
    expr: Expr


class String(Node):
    """A string literal: text pieces and interpolations, escapes decoded."""

    kind: Literal["string"] = "string"
    parts: list[Text | Interpolation]

    def constant(self) -> str | None:
        """The string's value when it has no interpolation."""
        if all(isinstance(part, Text) for part in self.parts):
            return "".join(part.value for part in self.parts)  # type: ignore[union-attr]
        return None


class ListExpr(Node):
    """`[a, b, c]`."""

    kind: Literal["list"] = "list"
    items: list[Expr]


class Name(Node):
    """A reference to a variable."""

    kind: Literal["name"] = "name"
    name: str


class FieldAccess(Node):
    """`target.name`."""

    kind: Literal["field"] = "field"
    target: Expr
    name: str


class Index(Node):
    """`target[index]`."""

    kind: Literal["index"] = "index"
    target: Expr
    index: Expr


class Call(Node):
    """A builtin function call in an expression, `number(stdout)`."""

    kind: Literal["call"] = "call"
    func: Ident
    args: list[Expr]


class Unary(Node):
    """`not x` or `-x`."""

    kind: Literal["unary"] = "unary"
    op: Literal["not", "-"]
    operand: Expr


class Binary(Node):
    """A binary operation; comparisons never chain."""

    kind: Literal["binary"] = "binary"
    op: Literal["or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains",
                "matches", "+", "-", "*", "/"]
    left: Expr
    right: Expr


# Each union of node classes is told apart by `kind` (its JSON Schema says so, schema.py).
Expr = (
    Literal_ | Duration | String | ListExpr | Name | FieldAccess | Index | Call | Unary | Binary
)

# ------------------------------------------------------------------ statements


class Run(Node):
    """`run "COMMAND" [into NAME]`."""

    kind: Literal["run"] = "run"
    command: String
    into: Ident | None = None


class Header(Node):
    """`header "K" = EXPR` inside an http block."""

    kind: Literal["header"] = "header"
    name: String
    value: Expr


class Http(Node):
    """`http METHOD "URL" [{ header … body … }] [into NAME]`."""

    kind: Literal["http"] = "http"
    method: Ident
    url: String
    headers: list[Header] = []
    body: Expr | None = None
    into: Ident | None = None


Probe = Run | Http


class Expect(Node):
    """`expect EXPR`: a condition on a probe's result."""

    kind: Literal["expect"] = "expect"
    expr: Expr


class CheckStatement(Node):
    """`check "Title" { probe expect… within D every D }` inside a step."""

    kind: Literal["check"] = "check"
    title: String
    probe: Probe | None
    expects: list[Expect] = []
    within: Expr | None = None
    every: Expr | None = None


class Watch(Node):
    """`watch "Title" for D every D [tolerate N] { probe expect… }`."""

    kind: Literal["watch"] = "watch"
    title: String
    duration: Expr
    every: Expr
    tolerate: Expr | None = None
    probe: Probe | None
    expects: list[Expect] = []


class Confirm(Node):
    """`confirm "Question"`."""

    kind: Literal["confirm"] = "confirm"
    question: String


class Note(Node):
    """`note "Text"`."""

    kind: Literal["note"] = "note"
    text: String


class Wait(Node):
    """`wait DURATION`."""

    kind: Literal["wait"] = "wait"
    duration: Expr


class Set(Node):
    """`set NAME = EXPR`."""

    kind: Literal["set"] = "set"
    name: Ident
    value: Expr


class Fail(Node):
    """`fail "Message"`."""

    kind: Literal["fail"] = "fail"
    message: String


class Branch(Node):
    """One `if`/`else if` arm."""

    kind: Literal["branch"] = "branch"
    condition: Expr
    body: list[Statement]


class If(Node):
    """`if … { } else if … { } else { }`."""

    kind: Literal["if"] = "if"
    branches: list[Branch]
    otherwise: list[Statement] | None = None


class For(Node):
    """`for X in EXPR { … }`."""

    kind: Literal["for"] = "for"
    var: Ident
    iterable: Expr
    body: list[Statement]


class Argument(Node):
    """`name: EXPR` in a task call."""

    kind: Literal["argument"] = "argument"
    name: Ident
    value: Expr


class TaskCall(Node):
    """`NAME(arg: EXPR, …)` or `ns.NAME(…)`."""

    kind: Literal["task_call"] = "task_call"
    namespace: Ident | None = None
    name: Ident
    args: list[Argument]

    def qualified(self) -> str:
        """`ns.name` or `name`."""
        return f"{self.namespace.name}.{self.name.name}" if self.namespace else self.name.name


Statement = (
    Run | Http | CheckStatement | Watch | Expect | Confirm | Note | Wait | Set | Fail | If | For
    | TaskCall
)

# ------------------------------------------------------------------ attributes and items


class Retry(Node):
    """`retry N [every D] [backoff F]`."""

    kind: Literal["retry"] = "retry"
    count: Expr
    every: Expr | None = None
    backoff: Expr | None = None


class EnvVar(Node):
    """`NAME = EXPR` inside `env { … }`."""

    kind: Literal["env_var"] = "env_var"
    name: Ident
    value: Expr


class OnFailure(Node):
    """`on_failure abort | continue | rollback [{ … }]`."""

    kind: Literal["on_failure"] = "on_failure"
    policy: Literal["abort", "continue", "rollback"]
    body: list[Statement] | None = None


class RunbookHeader(Node):
    """`runbook "Title" { description … owner … tags […] signers "FILE" }`."""

    kind: Literal["runbook"] = "runbook"
    title: String
    description: String | None = None
    owner: String | None = None
    tags: ListExpr | None = None
    # The allowed-signers file (LANGUAGE.md §13), relative to the runbook: plain text only.
    signers: str | None = None
    signers_span: Span | None = None
    # The runbook's stable id (LANGUAGE.md §12): how a team store knows it on every machine.
    id: str | None = None
    id_span: Span | None = None


class Import(Node):
    """`import "PATH" as ns`."""

    kind: Literal["import"] = "import"
    path: str
    path_span: Span
    alias: Ident


class Targets(Node):
    """`targets "inventory.yaml"`: the hosts that `on` steps may name."""

    kind: Literal["targets"] = "targets"
    path: str
    path_span: Span


class Param(Node):
    """`param NAME [: TYPE] [= DEFAULT] [{ … }]`."""

    kind: Literal["param"] = "param"
    name: Ident
    type: Ident | None = None
    default: Expr | None = None
    description: String | None = None
    choices: ListExpr | None = None
    pattern: String | None = None


class Secret(Node):
    """`secret NAME from env "VAR"` or `from file "PATH"`."""

    kind: Literal["secret"] = "secret"
    name: Ident
    source: Literal["env", "file"]
    ref: str


class Let(Node):
    """`let NAME = EXPR`."""

    kind: Literal["let"] = "let"
    name: Ident
    value: Expr


class TaskParam(Node):
    """A task parameter, with an optional default."""

    kind: Literal["task_param"] = "task_param"
    name: Ident
    default: Expr | None = None


class Task(Node):
    """`task NAME(p1, p2 = DEFAULT) { … }`."""

    kind: Literal["task"] = "task"
    name: Ident
    params: list[TaskParam]
    body: list[Statement]


class Step(Node):
    """`step`, `check` (kind check_step) and the attributes they share."""

    kind: Literal["step", "check_step"] = "step"
    name: Ident
    title: String
    loop_var: Ident | None = None
    loop_over: Expr | None = None
    # `on HOSTS`: one instance per host, in batches, with an error budget.
    on: Expr | None = None
    batch: Expr | None = None
    max_failures: Expr | None = None
    when: Expr | None = None
    timeout: Expr | None = None
    retry: Retry | None = None
    env: list[EnvVar] | None = None
    dir: String | None = None
    description: String | None = None
    rollback: list[Statement] | None = None
    on_failure: OnFailure | None = None
    body: list[Statement]
    # A check step's probe, expectations and polling (empty for a plain step).
    probe: Probe | None = None
    expects: list[Expect] = []
    within: Expr | None = None
    every: Expr | None = None


class Gate(Node):
    """`gate NAME "Title" { … }`: a human approval."""

    kind: Literal["gate"] = "gate"
    name: Ident
    title: String
    when: Expr | None = None
    approvers: ListExpr | None = None
    require: Expr | None = None
    timeout: Expr | None = None
    message: String | None = None
    self_approval: Expr | None = None
    description: String | None = None


class DefaultPolicy(Node):
    """A top-level `on_failure POLICY`: the default for every step."""

    kind: Literal["default_policy"] = "default_policy"
    policy: Literal["abort", "continue", "rollback"]


class Finally(Node):
    """`finally { … }`: runs once when the run ends."""

    kind: Literal["finally"] = "finally"
    body: list[Statement]


Item = (
    RunbookHeader | Import | Targets | Param | Secret | Let | Task | Step | Gate | DefaultPolicy
    | Finally
)


class Runbook(Node):
    """A parsed file: its items in file order."""

    kind: Literal["file"] = "file"
    path: str
    items: list[Item]

    def of(self, *kinds: str) -> list:
        """The items of the given kinds, in file order."""
        return [item for item in self.items if item.kind in kinds]

    @property
    def header(self) -> RunbookHeader | None:
        """The optional `runbook "Title" { … }` header."""
        found = self.of("runbook")
        return found[0] if found else None

    @property
    def targets(self) -> Targets | None:
        """The `targets "FILE"` item naming the inventory, if any (the first counts)."""
        found = self.of("targets")
        return found[0] if found else None

    @property
    def units(self) -> list[Step | Gate]:
        """Steps, checks and gates in file order: what runs."""
        return self.of("step", "check_step", "gate")

    @property
    def default_policy(self) -> str:
        """The file's default failure policy (`abort` unless set)."""
        found = self.of("default_policy")
        return found[-1].policy if found else "abort"



# ------------------------------------------------------------------ JSON documents


def to_data(value: Any) -> Any:
    """A node (or a list of nodes) as JSON-ready data: one dict per node, `kind` first,
    then the span and the node's own fields in declared order (`runbook check --ast`)."""
    # Loops, not comprehensions: each comprehension is a frame of its own, and the deepest
    # legal file (LANGUAGE.md's nesting limit) must stay well within Python's recursion limit.
    if isinstance(value, Frozen):
        data = {}
        for name, field in value.__dict__.items():
            data[name] = to_data(field) if isinstance(field, (Frozen, list, tuple)) else field
        return data
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            items.append(to_data(item) if isinstance(item, (Frozen, list, tuple)) else item)
        return items
    return value


def from_data(data: Any) -> Any:
    """The nodes a `to_data` document describes: a dict's `kind` names its class (a dict
    without one is a Span). Raises ValueError for an unknown kind, TypeError for a missing
    or unknown field."""
    if isinstance(data, list):
        items = []
        for item in data:
            items.append(from_data(item) if isinstance(item, (dict, list)) else item)
        return items
    if not isinstance(data, dict):
        return data
    values = {}
    for name, value in data.items():
        values[name] = from_data(value) if isinstance(value, (dict, list)) else value
    if "kind" not in data:
        return Span.make(**values)
    cls = node_kinds().get(data["kind"])
    if cls is None:
        raise ValueError(f"no AST node has kind {data['kind']!r}")
    return cls.make(**values)


def node_classes() -> list[type[Node]]:
    """Every concrete node class, in declaration order."""
    return [value for value in globals().values()
            if isinstance(value, type) and issubclass(value, Node) and value is not Node]


def node_kinds() -> dict[str, type[Node]]:
    """Each `kind` tag and the class that carries it (`check_step` is a Step)."""
    if not _KINDS:
        for cls in node_classes():
            # The annotation is text (`Literal['step', 'check_step']`); its words are the tags.
            for tag in re.findall(r"[a-z_]+", cls.__annotations__["kind"].partition("[")[2]):
                _KINDS[tag] = cls
    return _KINDS


_KINDS: dict[str, type[Node]] = {}
