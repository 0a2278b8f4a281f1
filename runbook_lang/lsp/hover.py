"""Hover text: what a name is, in Markdown, from its definition and its doc comment."""

from __future__ import annotations

from . import docs
from .index import Builtin, Definition, Index, Occurrence


def describe(index: Index, occurrence: Occurrence) -> str | None:
    """Markdown for the thing `occurrence` names (None when nothing is known about it)."""
    target = occurrence.target
    if occurrence.role == "import_path":
        return _import_path(index, occurrence)
    if isinstance(target, Builtin):
        return _builtin(target)
    if target is None:
        return None
    return _definition(target)


def _code(text: str) -> str:
    return f"```runbook\n{text}\n```"


def _text(definition: Definition, node) -> str:
    """A node's source text, as written."""
    return definition.module.source.text[node.span.start:node.span.end]


def _plain(definition: Definition, string) -> str:
    """A string literal's text without its quotes (`{{…}}` kept as written)."""
    raw = _text(definition, string)
    return raw[3:-3].strip() if raw.startswith('"""') else raw[1:-1]


def _builtin(target: Builtin) -> str:
    if target.kind == "function":
        signature, doc = docs.BUILTINS.get(target.name, (f"{target.name}(…)", "Not a builtin."))
        return f"{_code(signature)}\n\n{doc}"
    if target.kind == "probe":
        vtype, doc = docs.PROBE_NAMES.get((target.detail, target.name), ("", ""))
        return f"{_code(f'{target.name}: {vtype}')}\n\n{doc} (the result of the `{target.detail}`" \
               " probe, for `expect`)"
    vtype, doc = docs.RUN_NAMES.get(target.name, ("", ""))
    return f"{_code(f'{target.name}: {vtype}')}\n\n{doc}"


def _definition(target: Definition) -> str | None:
    node = target.node
    kind = target.kind
    if kind == "param":
        head = f"param {node.name.name}"
        if node.type is not None:
            head += f": {node.type.name}"
        if node.default is not None:
            head += f" = {_first_line(_text(target, node.default))}"
        parts = [_code(head)]
        if node.description is not None:
            parts.append(_plain(target, node.description))
        if node.choices is not None:
            parts.append(f"Choices: `{_text(target, node.choices)}`")
        if node.pattern is not None:
            parts.append(f"Pattern: `{_plain(target, node.pattern)}`")
        if node.default is None:
            parts.append("Required: set it with `--param "
                         f"{node.name.name}=VALUE`.")
        return "\n\n".join(parts)
    if kind == "secret":
        return _code(f'secret {node.name.name} from {node.source} "{node.ref}"') + \
            "\n\nA secret: its value is never printed, logged or stored."
    if kind == "let":
        return _code(f"let {node.name.name} = {_first_line(_text(target, node.value))}")
    if kind == "task":
        return _task(target)
    if kind == "task_param":
        return _task_param(target)
    if kind in ("step", "check", "gate"):
        return _unit(target)
    if kind == "import":
        return _import(target)
    if kind == "var":
        how = "`set`" if node.kind == "set" else f"`{node.kind} … into`"
        return _code(f"variable {target.name}") + f"\n\nSet by {how} at line {target.span.line}" \
            + (f" in {_shown(target)}" if target.module is not None else "") + "."
    if kind == "loop":
        return _code(f"loop variable {target.name}") + "\n\nEach item of the list in turn."
    return None


def _task(target: Definition) -> str:
    node = target.node
    parts = [_code(signature(target))]
    doc = docs.comment_block_above(target.module.source.text, node.span.line)
    if doc:
        parts.append(_doc_markdown(doc))
    return "\n\n".join(parts)


def signature(target: Definition) -> str:
    """`task NAME(p1, p2 = DEFAULT)`."""
    node = target.node
    params = []
    for param in node.params:
        text = param.name.name
        if param.default is not None:
            text += f" = {_first_line(_text(target, param.default))}"
        params.append(text)
    return f"task {node.name.name}({', '.join(params)})"


def task_summary(target: Definition) -> str:
    """The first paragraph of a task's doc comment ("" when it has none)."""
    return docs.summary(docs.comment_block_above(target.module.source.text,
                                                 target.node.span.line))


def _task_param(target: Definition) -> str:
    node = target.node
    head = f"task parameter {node.name.name}"
    if node.default is not None:
        head += f" = {_first_line(_text(target, node.default))}"
    parts = [_code(head)]
    task = _task_of(target)
    if task is not None:
        doc = docs.comment_block_above(target.module.source.text, task.span.line)
        line = docs.param_doc(doc, node.name.name)
        if line:
            parts.append(line)
        parts.append(f"Of `task {task.name.name}` in {_shown(target)}.")
    return "\n\n".join(parts)


def _task_of(target: Definition):
    ast = target.module.ast
    for task in ast.of("task") if ast is not None else []:
        if any(p is target.node for p in task.params):
            return task
    return None


def _unit(target: Definition):
    node = target.node
    word = {"step": "step", "check_step": "check", "gate": "gate"}[node.kind]
    head = f"{word} {node.name.name} {_text(target, node.title)}"
    parts = [_code(head)]
    if node.description is not None:
        parts.append(_plain(target, node.description))
    facts = []
    if node.when is not None:
        facts.append(f"only when `{_text(target, node.when)}`")
    if node.timeout is not None:
        facts.append(f"timeout `{_text(target, node.timeout)}`")
    if node.kind == "gate":
        approvers = _text(target, node.approvers) if node.approvers is not None else "anyone"
        require = _text(target, node.require) if node.require is not None else "1"
        facts.append(f"{require} approval(s) of {approvers}")
    elif node.on_failure is not None:
        facts.append(f"on failure: {node.on_failure.policy}")
    if facts:
        parts.append("; ".join(facts).capitalize() + ".")
    return "\n\n".join(parts)


def _import(target: Definition) -> str:
    node = target.node
    parts = [_code(f'import "{node.path}" as {node.alias.name}')]
    imported = target.module.imports.get(node.alias.name)
    if imported is not None:
        doc = docs.leading_comment(imported.source.text)
        if doc:
            parts.append(docs.summary(doc))
        if imported.ast is not None:
            tasks = [t.name.name for t in imported.ast.of("task")]
            if tasks:
                parts.append("Tasks: " + ", ".join(f"`{t}`" for t in tasks))
    return "\n\n".join(parts)


def _import_path(index: Index, occurrence: Occurrence) -> str | None:
    target = occurrence.target
    if isinstance(target, Definition) and target.kind == "import":
        return _import(target)
    return None


def _shown(target: Definition) -> str:
    return f"`{target.module.source.path}`"


def _first_line(text: str) -> str:
    lines = text.split("\n")
    return lines[0] + (" …" if len(lines) > 1 else "")


def _doc_markdown(doc: str) -> str:
    """A doc comment as Markdown: indented lines (usage, parameters) stay preformatted."""
    out: list[str] = []
    block: list[str] = []
    for line in doc.split("\n"):
        if line.startswith("  "):
            block.append(line[2:])
            continue
        if block:
            out.append("```\n" + "\n".join(block) + "\n```")
            block = []
        out.append(line)
    if block:
        out.append("```\n" + "\n".join(block) + "\n```")
    return "\n".join(out)
