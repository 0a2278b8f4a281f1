"""Walks over AST expressions and statements shared by the analyser and the interpreter."""

from __future__ import annotations

from collections.abc import Iterator

from . import nodes as n


def subexpressions(node) -> list:
    """The expressions directly inside `node`, in source order (a string's interpolations,
    a list's items, a call's arguments, an operator's operands)."""
    kind = node.kind
    if kind == "string":
        return [p.expr for p in node.parts if p.kind == "interpolation"]
    if kind == "list":
        return list(node.items)
    if kind == "field":
        return [node.target]
    if kind == "index":
        return [node.target, node.index]
    if kind == "call":
        return list(node.args)
    if kind == "unary":
        return [node.operand]
    if kind == "binary":
        return [node.left, node.right]
    return []


def expressions(expr) -> Iterator:
    """Every expression node in `expr`, itself first (interpolations included)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if node is not None:
            yield node
            stack.extend(subexpressions(node))


def names_in(expr) -> list[str]:
    """Every variable name an expression reads (including inside interpolations)."""
    # The walk of `expressions`, without a generator: most expressions are a name or two.
    found: list[str] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if node.kind == "name":
            found.append(node.name)
        else:
            stack.extend(subexpressions(node))
    return found


def env_reads(expr) -> list[str]:
    """The environment variables an expression reads by name: `getenv("X")` with a literal."""
    found: list[str] = []
    for node in expressions(expr):
        if node.kind != "call" or node.func.name != "getenv" or not node.args:
            continue
        first = node.args[0]
        if first.kind == "string" and all(part.kind == "text" for part in first.parts):
            found.append("".join(part.value for part in first.parts))
    return found


def name_node(expr, name: str):
    """The first `Name` node reading `name` in an expression (interpolations included)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.kind == "name" and node.name == name:
            return node
        stack.extend(reversed(subexpressions(node)))
    return None


def assigned(statement) -> list[n.Ident]:
    """The variables a statement sets (`into`, `set`, a probe's `into`)."""
    if statement.kind in ("run", "http") and statement.into is not None:
        return [statement.into]
    if statement.kind == "set":
        return [statement.name]
    if statement.kind in ("check", "watch") and statement.probe is not None:
        return assigned(statement.probe)
    return []


def children(statement) -> list[list]:
    """The nested statement lists of an `if` or a `for`."""
    if statement.kind == "if":
        bodies = [b.body for b in statement.branches]
        if statement.otherwise is not None:
            bodies.append(statement.otherwise)
        return bodies
    if statement.kind == "for":
        return [statement.body]
    return []
