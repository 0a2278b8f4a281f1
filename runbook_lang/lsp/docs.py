"""The words of the language and their one-line documentation, for hover and completion.

The wording follows LANGUAGE.md; tests check these tables against the analyser's own lists,
so a builtin or a reserved word added there cannot be forgotten here.
"""

from __future__ import annotations

import re

# Builtin functions (LANGUAGE.md §5): signature and what it does.
BUILTINS = {
    "number": ("number(x) -> number", "Parse text (or take a number) as an int or a float."),
    "int": ("int(x) -> int", "Convert to an integer."),
    "float": ("float(x) -> float", "Convert to a floating-point number."),
    "str": ("str(x) -> string", "The value as text."),
    "bool": ("bool(x) -> bool", "Convert to a boolean."),
    "len": ("len(x) -> int", "The length of a string or a list."),
    "lower": ("lower(x) -> string", "The text in lower case."),
    "upper": ("upper(x) -> string", "The text in upper case."),
    "trim": ("trim(x) -> string", "The text without surrounding white space."),
    "json": ("json(x) -> any", "Parse JSON text; then use `.field` and `[i]`."),
    "to_json": ("to_json(x) -> string", "The JSON text of a value: a string quoted, lists "
                "and objects as they are (a JSON `body`)."),
    "getenv": ("getenv(name[, default]) -> string",
               "An environment variable of the runbook process (or `default`)."),
    "raw": ("raw(x) -> string", "Insert text into a command as-is, without shell quoting; "
            "`runbook check` warns where it is used."),
}

# Names a probe leaves for `expect` (LANGUAGE.md §4).
PROBE_NAMES = {
    ("run", "exit_code"): ("int", "The command's exit code."),
    ("run", "stdout"): ("string", "The command's standard output."),
    ("run", "stderr"): ("string", "The command's standard error."),
    ("run", "duration"): ("duration", "How long the command took."),
    ("http", "status"): ("int", "The HTTP status of the answer."),
    ("http", "body"): ("string", "The body of the answer, as text."),
    ("http", "headers"): ("map", "The answer's headers, names in lower case."),
    ("http", "duration"): ("duration", "How long the request took."),
}

RUN_NAMES = {
    "run_id": ("string", "The id of the current run."),
    "run_status": ("string", "How the run ended (in `finally`): succeeded, failed, "
                   "rolled_back, rollback_failed or rejected."),
    "failed_step": ("string", "The step that failed (in `finally`), or empty."),
}

# Words that begin top-level items (LANGUAGE.md §3).
ITEM_KEYWORDS = ("runbook", "import", "param", "secret", "let", "task", "step", "check",
                 "gate", "on_failure", "finally")
# Words that begin statements (LANGUAGE.md §4).
STATEMENT_KEYWORDS = ("run", "http", "check", "watch", "confirm", "note", "wait", "set",
                      "fail", "if", "for")
STEP_ATTRIBUTES = ("when", "timeout", "retry", "env", "dir", "description", "rollback",
                   "on_failure")
CHECK_STEP_ATTRIBUTES = ("when", "timeout", "retry", "env", "dir", "description",
                         "on_failure", "within")
GATE_ATTRIBUTES = ("when", "approvers", "require", "timeout", "message", "self_approval",
                   "description")
HEADER_ATTRIBUTES = ("description", "owner", "tags")
PARAM_ATTRIBUTES = ("description", "choices", "pattern")
TYPES = ("string", "int", "float", "bool", "duration", "list")
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head")
POLICIES = ("abort", "continue", "rollback")

KEYWORD_DOCS = {
    "runbook": "The file's header: title, `description`, `owner`, `tags`.",
    "import": 'Bring in a module\'s tasks and lets: `import "std/NAME" as ns`.',
    "param": "An input, set with `--param NAME=VALUE`; no default means required.",
    "secret": "A value that is never printed, logged or stored.",
    "let": "A named value computed once, before any step.",
    "task": "A reusable block of statements, called as `NAME(arg: …)`.",
    "step": "A unit of work, addressed by its name in `--from`, `resume` and the transcript.",
    "check": "A probe and expectations, polled until they hold or the deadline passes.",
    "gate": "A human approval.",
    "on_failure": "What a failure does: `abort`, `continue` or `rollback`.",
    "finally": "Statements that always run last.",
    "run": "Run a shell command; a non-zero exit fails the step.",
    "http": "A built-in HTTP request; a status outside 200-399 fails the step.",
    "watch": "Expectations that must hold at every sample for the whole window.",
    "expect": "Inside check/watch: a condition on the probe's result.",
    "confirm": "The operator must answer yes; recorded.",
    "note": "Printed and recorded.",
    "wait": "Sleep, with a visible countdown.",
    "set": "Assign a run-wide variable (recorded, restored on resume).",
    "fail": "Fail the current step.",
    "if": "Conditional.",
    "for": "Loop over a list.",
    "when": "Skip unless the condition is true; the reason is recorded.",
    "timeout": "Stop the whole process group after this long.",
    "retry": "Re-run the step: `retry N [every D] [backoff F]`.",
    "env": "Environment variables for every command of the step.",
    "dir": "The working directory of the step's commands.",
    "description": "Text for people: shown by `runbook view` and the report.",
    "rollback": "This step's undo block.",
    "within": "Poll until the deadline: `within D every D`.",
    "approvers": "Who may approve the gate (default: anyone).",
    "require": "How many approvals the gate needs (default 1).",
    "message": "Shown to approvers.",
    "self_approval": "Whether the operator counts toward the quorum (default true).",
    "owner": "Who owns the runbook.",
    "tags": "Labels for the runbook.",
    "choices": "The values a param may take.",
    "pattern": "A regular expression the param's value must match.",
}


def comment_block_above(text: str, line: int) -> str:
    """The `#` comment lines right above 1-based `line`, without the `#`, as written."""
    lines = text.split("\n")
    index = line - 2
    block: list[str] = []
    while index >= 0 and lines[index].lstrip().startswith("#"):
        block.append(lines[index].lstrip()[1:])
        index -= 1
    block.reverse()
    return _dedent(block)


def leading_comment(text: str) -> str:
    """The comment block a file starts with (a module's own documentation)."""
    block = []
    for line in text.split("\n"):
        if not line.lstrip().startswith("#"):
            break
        block.append(line.lstrip()[1:])
    return _dedent(block)


def summary(doc: str) -> str:
    """The first paragraph of a doc comment, on one line."""
    first = doc.strip().split("\n\n")[0]
    return " ".join(part.strip() for part in first.split("\n"))


def param_doc(doc: str, name: str) -> str | None:
    """The line documenting parameter `name` in a task's doc (`  url  the endpoint …`)."""
    lines = doc.split("\n")
    pattern = re.compile(rf"^\s+{re.escape(name)}\s{{2,}}(\S.*)$")
    for i, line in enumerate(lines):
        found = pattern.match(line)
        if found:
            text = [found.group(1)]
            indent = line.index(found.group(1))
            for more in lines[i + 1:]:
                if more.strip() and len(more) - len(more.lstrip()) >= indent:
                    text.append(more.strip())
                else:
                    break
            return " ".join(text)
    return None


def _dedent(lines: list[str]) -> str:
    width = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[width:] for x in lines).strip("\n")
