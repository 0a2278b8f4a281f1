"""Completion: what may be written at the cursor, from the text before it and the last index.

While a line is being typed the file rarely parses, so the context (inside which block, a
string, an interpolation, a call's arguments) is read from the text with a small scanner,
and the names come from the index of the last version that did parse.
"""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp

from ..dataclass import dataclass, field
from . import docs
from .hover import signature, task_summary
from .index import Builtin, Definition, Index

# Words that open a `{ … }` block, in the order they are searched for in its header.
BLOCK_WORDS = ("runbook", "param", "task", "step", "check", "gate", "finally", "on_failure",
               "rollback", "watch", "if", "else", "for", "env", "http")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Context:
    """Where the cursor stands, as far as the text before it tells."""

    in_comment: bool = False
    in_string: bool = False
    in_interpolation: bool = False
    string_start: int = -1  # offset of the opening quote of the string the cursor is in
    blocks: list[str] = field(default_factory=list)  # the keyword of each open block
    parens: list[int] = field(default_factory=list)  # offsets of open `(` and `[`


def scan(text: str, offset: int) -> Context:
    """The lexical context at `offset`: comments, strings, interpolations, open blocks."""
    ctx = Context()
    i = 0
    segment_start = 0  # where the current block header may begin
    while i < offset:
        char = text[i]
        if ctx.in_string and not ctx.in_interpolation:
            long = text.startswith('"""', ctx.string_start)
            if char == "\\":
                i += 2
                continue
            if text.startswith("{{", i):
                ctx.in_interpolation = True
                i += 2
                continue
            if long and text.startswith('"""', i):
                ctx.in_string = False
                i += 3
                continue
            if not long and (char == '"' or char == "\n"):
                ctx.in_string = False
            i += 1
            continue
        if ctx.in_interpolation:
            if text.startswith("}}", i):
                ctx.in_interpolation = False
                i += 2
                continue
            i += 1
            continue
        if char == "#":
            end = text.find("\n", i, offset)
            if end < 0:
                ctx.in_comment = True
                return ctx
            i = end
            continue
        if char == '"':
            ctx.in_string = True
            ctx.string_start = i
            i += 3 if text.startswith('"""', i) else 1
            continue
        if char == "{":
            ctx.blocks.append(_block_word(text[segment_start:i]))
            segment_start = i + 1
        elif char == "}":
            if ctx.blocks:
                ctx.blocks.pop()
            segment_start = i + 1
        elif char in "([":
            ctx.parens.append(i)
        elif char in ")]":
            if ctx.parens:
                ctx.parens.pop()
        i += 1
    return ctx


def _block_word(header: str) -> str:
    """The keyword that opened a block, from the text between the previous brace and it."""
    header = re.sub(r'"""(?:[^"\\]++|\\.|"(?!""))*+"""|"(?:[^"\\\n]++|\\.)*+"|#[^\n]*', " ",
                    header)
    for found in WORD.finditer(header):
        word = found.group()
        if word in BLOCK_WORDS and not header[:found.start()].rstrip().endswith("."):
            return word
    return "?"


def complete(text: str, offset: int, index: Index | None, path: Path) -> list[lsp.CompletionItem]:
    """Completion items for the cursor at `offset` of `text`."""
    ctx = scan(text, offset)
    if ctx.in_comment:
        return []
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset]
    if ctx.in_string and not ctx.in_interpolation:
        if re.search(r'\bimport\s+"[^"]*$', before):
            return _import_paths(before[before.rfind('"') + 1:], path)
        return []
    if ctx.in_interpolation:
        return _names(index, offset, ctx)
    member = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_0-9]*)$", before)
    if member is not None:
        return _members(index, member.group(1))
    if re.search(r"\bhttp\s+[a-z]*$", before):
        return _words(docs.HTTP_METHODS, lsp.CompletionItemKind.Method)
    if re.search(r"\bparam\s+\w+\s*:\s*\w*$", before):
        return _words(docs.TYPES, lsp.CompletionItemKind.TypeParameter)
    if re.search(r"\bon_failure\s+\w*$", before):
        return _words(docs.POLICIES, lsp.CompletionItemKind.EnumMember)
    if ctx.parens and text[ctx.parens[-1]] == "(":
        arguments = _arguments(text, ctx.parens[-1], offset, index)
        if arguments is not None:
            return arguments
    if re.fullmatch(r"\s*[A-Za-z_]*", before) and not ctx.parens:
        return _statement_start(ctx, index, offset)
    return _names(index, offset, ctx)


def _words(words, kind) -> list[lsp.CompletionItem]:
    return [lsp.CompletionItem(label=w, kind=kind, documentation=docs.KEYWORD_DOCS.get(w))
            for w in words]


def _keywords(words) -> list[lsp.CompletionItem]:
    return [lsp.CompletionItem(label=w, kind=lsp.CompletionItemKind.Keyword,
                               detail=docs.KEYWORD_DOCS.get(w)) for w in words]


def _statement_start(ctx: Context, index: Index | None, offset: int) -> list[lsp.CompletionItem]:
    """Keywords that may begin a line in this block, and the tasks that may be called."""
    block = ctx.blocks[-1] if ctx.blocks else None
    nested = len(ctx.blocks) > 1
    if block is None:
        return _keywords(docs.ITEM_KEYWORDS)
    if block == "runbook":
        return _keywords(docs.HEADER_ATTRIBUTES)
    if block == "param":
        return _keywords(docs.PARAM_ATTRIBUTES)
    if block == "gate":
        return _keywords(docs.GATE_ATTRIBUTES)
    if block == "http":
        return _keywords(("header", "body"))
    if block == "env":
        return []
    if block in ("check", "watch"):
        words: tuple[str, ...] = ("run", "http", "expect")
        if block == "check":
            words += ("within",) if nested else docs.CHECK_STEP_ATTRIBUTES
        return _keywords(words)
    words = docs.STATEMENT_KEYWORDS
    if block == "step":
        words += docs.STEP_ATTRIBUTES
    return _keywords(words) + _callables(index)


def _callables(index: Index | None) -> list[lsp.CompletionItem]:
    if index is None:
        return []
    items = [_task_item(task) for task in index.tasks.values()]
    for name, definition in index.top.items():
        if definition.kind == "import":
            items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Module,
                                            detail=f'import "{definition.node.path}"'))
    return items


def _task_item(task: Definition) -> lsp.CompletionItem:
    return lsp.CompletionItem(label=task.name, kind=lsp.CompletionItemKind.Function,
                              detail=signature(task), documentation=task_summary(task) or None)


def _members(index: Index | None, alias: str) -> list[lsp.CompletionItem]:
    """`ns.`: the tasks and lets of the module imported as `ns`."""
    imported = index.module_index(alias) if index is not None else None
    if imported is None:
        return []
    items = [_task_item(task) for task in imported.tasks.values()]
    items += [lsp.CompletionItem(label=d.name, kind=lsp.CompletionItemKind.Constant,
                                 detail=f"let {d.name}")
              for d in imported.top.values() if d.kind == "let"]
    return items


def _arguments(text: str, paren: int, offset: int, index: Index | None):
    """Inside `task(…)` where an argument name goes: the parameters not given yet."""
    call = re.search(r"(?:([A-Za-z_]\w*)\.)?([A-Za-z_]\w*)\s*$", text[:paren])
    if call is None or index is None:
        return None
    alias, name = call.groups()
    if alias is not None:
        imported = index.module_index(alias)
        task = imported.tasks.get(name) if imported is not None else None
    else:
        task = index.tasks.get(name)
    if task is None:
        return None
    inside = text[paren + 1:offset]
    last = inside.rsplit(",", 1)[-1]
    if ":" in last:
        return None  # the cursor is in an argument's value
    given = set(re.findall(r"([A-Za-z_]\w*)\s*:", inside))
    items = []
    from .docs import comment_block_above, param_doc

    doc = comment_block_above(task.module.source.text, task.node.span.line)
    for param in task.node.params:
        if param.name.name in given:
            continue
        default = "" if param.default is None else \
            " = " + task.module.source.text[param.default.span.start:param.default.span.end]
        items.append(lsp.CompletionItem(
            label=param.name.name, kind=lsp.CompletionItemKind.Field,
            detail=("required" if param.default is None else "optional") + default,
            documentation=param_doc(doc, param.name.name),
            insert_text=f"{param.name.name}: ",
            sort_text=("0" if param.default is None else "1") + param.name.name))
    return items


KIND_OF = {
    "param": lsp.CompletionItemKind.Property, "secret": lsp.CompletionItemKind.Constant,
    "let": lsp.CompletionItemKind.Constant, "var": lsp.CompletionItemKind.Variable,
    "loop": lsp.CompletionItemKind.Variable, "task_param": lsp.CompletionItemKind.Variable,
    "import": lsp.CompletionItemKind.Module,
}


def _names(index: Index | None, offset: int, ctx: Context) -> list[lsp.CompletionItem]:
    """Names an expression may read here, the builtins, `true` and `false`."""
    items: list[lsp.CompletionItem] = []
    scope = index.scope_at(offset) if index is not None else {}
    in_probe = any(block in ("check", "watch") for block in ctx.blocks)
    for name, target in scope.items():
        if isinstance(target, Builtin):
            if target.kind == "probe" and not in_probe:
                continue
            detail = docs.PROBE_NAMES.get((target.detail, name), docs.RUN_NAMES.get(name,
                                                                                  ("", "")))
            items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Variable,
                                            detail=detail[0], documentation=detail[1]))
        elif target is not None:
            items.append(lsp.CompletionItem(label=name, kind=KIND_OF.get(
                target.kind, lsp.CompletionItemKind.Variable), detail=target.kind))
    for name, (sig, doc) in docs.BUILTINS.items():
        items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Function,
                                        detail=sig, documentation=doc))
    items += _words(("true", "false"), lsp.CompletionItemKind.Keyword)
    return items


def _import_paths(typed: str, path: Path) -> list[lsp.CompletionItem]:
    """`import "…`: the `std/` modules, and runbook files beside this one."""
    from ..resources import stdlib_dir

    items = []
    try:
        stdlib = sorted(stdlib_dir().glob("*.runbook"))
    except FileNotFoundError:
        stdlib = []
    for module in stdlib:
        text = module.read_text(encoding="utf-8")
        items.append(lsp.CompletionItem(
            label=f"std/{module.stem}", kind=lsp.CompletionItemKind.Module,
            detail=docs.summary(docs.leading_comment(text)).split(" — ", 1)[-1] or None))
    if not typed.startswith("std/"):
        folder = path.parent
        try:
            local = sorted(folder.rglob("*.runbook"))[:200]
        except OSError:
            local = []
        for other in local:
            if other.resolve() != path.resolve():
                items.append(lsp.CompletionItem(
                    label="./" + other.relative_to(folder).as_posix(),
                    kind=lsp.CompletionItemKind.File))
    return items
