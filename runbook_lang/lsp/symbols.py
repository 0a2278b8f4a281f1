"""The outline of a runbook: its header, imports, params, secrets, lets, tasks and units."""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types as lsp

# (symbol kind, the word shown as detail) by node kind.
KINDS = {
    "runbook": (lsp.SymbolKind.File, "runbook"),
    "import": (lsp.SymbolKind.Module, "import"),
    "param": (lsp.SymbolKind.Property, "param"),
    "secret": (lsp.SymbolKind.Key, "secret"),
    "let": (lsp.SymbolKind.Constant, "let"),
    "task": (lsp.SymbolKind.Function, "task"),
    "step": (lsp.SymbolKind.Event, "step"),
    "check_step": (lsp.SymbolKind.Event, "check"),
    "gate": (lsp.SymbolKind.Interface, "gate"),
    "finally": (lsp.SymbolKind.Event, "finally"),
    "default_policy": (lsp.SymbolKind.EnumMember, "on_failure"),
    "check": (lsp.SymbolKind.Boolean, "check"),
    "watch": (lsp.SymbolKind.Boolean, "watch"),
}


def document_symbols(module, to_range: Callable) -> list[lsp.DocumentSymbol]:
    """One symbol per item, in file order; steps hold their checks and watches.

    `to_range(span)` turns a span of the module's source into an LSP range.
    """
    ast = module.ast
    if ast is None:
        return []
    text = module.source.text
    symbols = []
    for item in ast.items:
        kind, word = KINDS.get(item.kind, (lsp.SymbolKind.Object, item.kind))
        name, selection, detail = _naming(item, text, word)
        children = None
        if item.kind in ("step", "check_step", "task", "finally"):
            children = [_inner(st, text, to_range) for st in _checks(item)] or None
        symbols.append(lsp.DocumentSymbol(
            name=name or word, detail=detail, kind=kind, range=to_range(item.span),
            selection_range=to_range(selection), children=children))
    return symbols


def _naming(item, text: str, word: str):
    """The symbol's name, the span to select, and its detail line."""
    if item.kind == "runbook":
        return _string(item.title, text), item.title.span, word
    if item.kind == "import":
        return item.alias.name, item.alias.span, f'import "{item.path}"'
    if item.kind in ("step", "check_step", "gate"):
        return item.name.name, item.name.span, f"{word} {_string(item.title, text)}"
    if item.kind == "param":
        detail = "param" + (f": {item.type.name}" if item.type is not None else "")
        return item.name.name, item.name.span, detail
    if item.kind == "task":
        params = ", ".join(p.name.name for p in item.params)
        return item.name.name, item.name.span, f"task({params})"
    if item.kind == "default_policy":
        return f"on_failure {item.policy}", item.span, "default failure policy"
    if hasattr(item, "name"):
        return item.name.name, item.name.span, word
    return word, item.span, word


def _string(string, text: str) -> str:
    raw = text[string.span.start:string.span.end]
    return raw[3:-3].strip() if raw.startswith('"""') else raw[1:-1]


def _checks(item) -> list:
    """The check and watch statements of a block, nested ones included, in file order."""
    found = []
    stack = list(getattr(item, "body", []) or [])
    while stack:
        statement = stack.pop()
        if statement.kind in ("check", "watch"):
            found.append(statement)
        elif statement.kind == "if":
            for branch in statement.branches:
                stack.extend(branch.body)
            stack.extend(statement.otherwise or [])
        elif statement.kind == "for":
            stack.extend(statement.body)
    return sorted(found, key=lambda s: s.span.start)


def _inner(statement, text: str, to_range: Callable) -> lsp.DocumentSymbol:
    kind, word = KINDS[statement.kind]
    return lsp.DocumentSymbol(name=_string(statement.title, text) or word, detail=word, kind=kind,
                              range=to_range(statement.span),
                              selection_range=to_range(statement.title.span))
