"""Walks over AST expressions and statements shared by the analyser and the interpreter."""

from __future__ import annotations

from . import nodes as n


def names_in(expr) -> list[str]:
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


def env_reads(expr) -> list[str]:
    """The environment variables an expression reads by name: `getenv("X")` with a literal."""
    found: list[str] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        kind = node.kind
        if kind == "call":
            stack.extend(node.args)
            first = node.args[0] if node.args else None
            if node.func.name == "getenv" and first is not None and first.kind == "string" \
                    and all(part.kind == "text" for part in first.parts):
                found.append("".join(part.value for part in first.parts))
        elif kind == "string":
            stack.extend(p.expr for p in node.parts if p.kind == "interpolation")
        elif kind == "list":
            stack.extend(node.items)
        elif kind == "field":
            stack.append(node.target)
        elif kind == "index":
            stack.extend((node.target, node.index))
        elif kind == "unary":
            stack.append(node.operand)
        elif kind == "binary":
            stack.extend((node.left, node.right))
    return found


def name_node(expr, name: str):
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
