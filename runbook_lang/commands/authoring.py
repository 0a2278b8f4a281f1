"""Commands for people writing runbooks: `list`, `view`, `init`, `fmt`."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

from ..engine.prepare import StaticErrors, load_checked
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Refused
from ..reporting.output import print_diagnostics


def _load(path: str):
    """The checked module, or None after printing why it cannot be used."""
    try:
        return load_checked(path)
    except StaticErrors as error:
        print_diagnostics(error.diagnostics, error.sources)
    except Refused as error:
        sys.stderr.write(f"runbook: error: {error}\n")
    return None


def _text(module, node) -> str:
    return module.source.text[node.span.start:node.span.end] if node is not None else ""


def _plain(module, string) -> str:
    """A string literal as written, without its quotes (interpolations kept as `{{…}}`)."""
    raw = _text(module, string)
    if raw.startswith('"""'):
        from ..syntax.strings import _dedent

        return _dedent(raw[3:-3], 0)[0]
    return raw[1:-1]


def run_list(args) -> int:
    """`runbook list FILE`: the steps, checks and gates in order."""
    module = _load(args.file)
    if module is None:
        return EXIT_USAGE
    rows = []
    for number, unit in enumerate(module.ast.units, 1):
        kind = {"step": "step", "check_step": "check", "gate": "gate"}[unit.kind]
        extra = []
        if getattr(unit, "loop_over", None) is not None:
            extra.append(f"for {unit.loop_var.name} in {_text(module, unit.loop_over)}")
        if unit.when is not None:
            extra.append(f"when {_text(module, unit.when)}")
        rows.append((str(number), kind, unit.name.name, _plain(module, unit.title),
                     "; ".join(extra)))
    if not rows:
        print("no steps")
        return EXIT_OK
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        print((line + (f"  ({row[4]})" if row[4] else "")).rstrip())
    return EXIT_OK


# ---------------------------------------------------------------------- view


def run_view(args) -> int:
    """`runbook view FILE`: the runbook as a document for people."""
    module = _load(args.file)
    if module is None:
        return EXIT_USAGE
    markdown = render_markdown(module)
    if args.format == "html":
        sys.stdout.write(_markdown_to_html(markdown, module))
    else:
        sys.stdout.write(markdown)
    return EXIT_OK


def render_markdown(module) -> str:
    ast = module.ast
    header = ast.header
    out = [f"# {_plain(module, header.title) if header else Path(module.source.path).stem}", ""]
    if header is not None and header.description is not None:
        out += [_plain(module, header.description), ""]
    if header is not None and header.owner is not None:
        out += [f"Owner: {_plain(module, header.owner)}", ""]
    params = ast.of("param")
    if params:
        out += ["## Parameters", "", "| name | type | default | allowed values | description |",
                "|---|---|---|---|---|"]
        for p in params:
            out.append(f"| `{p.name.name}` | {p.type.name if p.type else ''} | "
                       f"{_cell(_text(module, p.default)) if p.default else '(required)'} | "
                       f"{_cell(_allowed(module, p))} | "
                       f"{_cell(_plain(module, p.description)) if p.description else ''} |")
        out.append("")
    secrets = ast.of("secret")
    if secrets:
        out += ["## Secrets", ""]
        out += [f"- `{s.name.name}` from {s.source} `{s.ref}`" for s in secrets]
        out.append("")
    out += ["## Procedure", "", f"Failure policy: `{ast.default_policy}` unless a step says "
            "otherwise.", ""]
    for number, unit in enumerate(ast.units, 1):
        kind = {"step": "Step", "check_step": "Check", "gate": "Gate"}[unit.kind]
        out += [f"### {number}. {_plain(module, unit.title)}", "",
                f"{kind} `{unit.name.name}`" + (f", only when `{_text(module, unit.when)}`"
                                                 if unit.when is not None else "")]
        if unit.description is not None:
            out += ["", _plain(module, unit.description)]
        if unit.kind == "gate":
            approvers = _text(module, unit.approvers) if unit.approvers else "anyone"
            require = _text(module, unit.require) if unit.require else "1"
            out += ["", f"Approval: {require} of {approvers}."]
        else:
            body = unit.body if unit.kind == "step" else [unit.probe, *unit.expects]
            if body:
                out += ["", "```runbook"] + [_text(module, s) for s in body if s] + ["```"]
            undo = unit.rollback or (unit.on_failure.body if unit.on_failure else None)
            if undo:
                out += ["", "To undo:", "", "```runbook"] + [_text(module, s) for s in undo] \
                    + ["```"]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _allowed(module, param) -> str:
    """A param's `choices` (one of …) and `pattern` (matching …), as written."""
    parts = []
    if param.choices is not None:
        parts.append("one of " + ", ".join(_text(module, item) for item in param.choices.items))
    if param.pattern is not None:
        # The regex exactly as written (`_plain` keeps its backslashes).
        parts.append(f"matching `{_plain(module, param.pattern)}`")
    return "; ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_to_html(markdown: str, module) -> str:
    """A plain, self-contained HTML page from the Markdown above (headings, code, tables)."""
    body, in_code, table = [], False, []
    for line in markdown.splitlines():
        if line.startswith("```"):
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            body.append(html.escape(line))
            continue
        if line.startswith("|"):
            # `\|` is a pipe inside a cell (a regex's alternation), not a column break.
            cells = [c.strip().replace("\\|", "|")
                     for c in re.split(r"(?<!\\)\|", line.strip().removeprefix("|")
                                       .removesuffix("|"))]
            if not all(set(c) <= {"-"} for c in cells):
                table.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                             + "</tr>")
            continue
        if table:
            body.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<p>• {html.escape(line[2:])}</p>")
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    if table:
        body.append("<table>" + "".join(table) + "</table>")
    title = html.escape(Path(module.source.path).name)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
            f"{title}</title><style>body{{font:14px/1.5 system-ui,sans-serif;max-width:60em;"
            "margin:2em auto}pre{background:#f6f6f6;padding:.6em}td{border:1px solid #ccc;"
            "padding:.2em .5em}table{border-collapse:collapse}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


# ---------------------------------------------------------------------- init


TEMPLATES = {
    "basic": '''# {name}.runbook — describe what this procedure is for.
runbook "{title}" {{
  description "What this runbook does, and when to run it."
  owner "your-team"
}}

# Inputs: set with --param NAME=VALUE or a YAML file with --params.
param environment: string = "staging" {{
  choices ["development", "staging", "production"]
}}

# A check only asserts; it is polled until it holds or the deadline passes.
check ready "The system is ready" {{
  run "echo ok"
  expect stdout == "ok"
  within 10s every 1s
}}

step work "Do the work in {{{{environment}}}}" {{
  run "echo working on {{{{environment}}}}"
  timeout 1m
  # What to do if this step, or a later one, fails: undo what this step did.
  on_failure rollback {{
    run "echo undoing the work"
  }}
}}

finally {{
  note "Finished: {{{{run_status}}}}"
}}
''',
    "deploy": '''# {name}.runbook — deploy a release with health checks and automatic rollback.
runbook "{title}" {{
  description "Deploy VERSION, verify it, and roll back automatically on failure."
  owner "your-team"
}}

import "std/http" as web

param environment: string = "staging" {{
  choices ["development", "staging", "production"]
}}
param version: string = "1.0.0" {{
  pattern "^[0-9]+\\.[0-9]+\\.[0-9]+$"
}}
param base_url: string = "http://127.0.0.1:8080"

gate approve_prod "Approve the production release" {{
  when environment == "production"
  require 1
}}

step deploy "Deploy {{{{version}}}}" {{
  run "echo deploying {{{{version}}}}"
  on_failure rollback {{
    run "echo restoring the previous version"
  }}
}}

step verify "Verify the release" {{
  # web.wait_healthy(url: "{{{{base_url}}}}/health", deadline: 60s)
  run "echo smoke tests against {{{{base_url}}}} pass"
  on_failure rollback
}}

finally {{
  note "Release {{{{version}}}}: {{{{run_status}}}}"
}}
''',
    "incident": '''# {name}.runbook — an incident procedure: diagnose, mitigate, confirm, record.
runbook "{title}" {{
  description "Steps for the on-call engineer."
  owner "on-call"
}}

step diagnose "Collect the facts" {{
  run "uptime"
  note "Record what you saw in the incident channel."
}}

step mitigate "Mitigate" {{
  confirm "Apply the mitigation now?"
  run "echo mitigating"
}}

finally {{
  note "Incident procedure ended: {{{{run_status}}}}"
}}
''',
}


def run_init(args) -> int:
    """`runbook init [--template T] FILE`: write a commented starting point."""
    path = Path(args.file)
    if path.exists():
        sys.stderr.write(f"runbook: error: {path} already exists; not overwritten\n")
        return EXIT_USAGE
    name = path.stem
    title = name.replace("_", " ").replace("-", " ").capitalize()
    try:
        path.write_text(TEMPLATES[args.template].format(name=name, title=title),
                        encoding="utf-8")
    except OSError as error:
        sys.stderr.write(f"runbook: error: cannot write {path}: {error.strerror}\n")
        return EXIT_USAGE
    print(f"wrote {path} (template {args.template}); next: runbook check {path}")
    return EXIT_OK


# ---------------------------------------------------------------------- fmt


def run_fmt(args) -> int:
    """`runbook fmt FILE… [--check]`: indentation and blank lines in the canonical layout."""
    from ..limits import MAX_RUNBOOK_BYTES, TooLarge, read_bounded
    from ..syntax.formatting import format_source

    changed, failed = [], False
    for name in args.files:
        path = Path(name)
        try:
            text = read_bounded(path, MAX_RUNBOOK_BYTES).decode("utf-8")
        except (OSError, UnicodeDecodeError, TooLarge) as error:
            sys.stderr.write(f"runbook: error: {name}: cannot read: {error}\n")
            failed = True
            continue
        result = format_source(text, name)
        if result.error is not None:
            sys.stderr.write(f"runbook: error: {name}: {result.error}\n")
            failed = True
            continue
        if result.text != text:
            changed.append(name)
            if not args.check:
                path.write_text(result.text, encoding="utf-8")
    verb = "would reformat" if args.check else "reformatted"
    for name in changed:
        print(f"{verb} {name}")
    if failed:
        return EXIT_USAGE
    return EXIT_FAILED if (args.check and changed) else EXIT_OK
