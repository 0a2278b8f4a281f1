"""E280: an interpolation in a `run` command where no shell quoting is safe (LANGUAGE.md §6.1).

The shell lexer (`syntax/shellwords.py`) reads the command's static text and gives each
interpolation its context; where no quoting can keep a value one literal word (a
here-document body, a comment, arithmetic, `eval`'s arguments, `sh -c`'s script…), the
check says so at the interpolation and names the fix: pass the value through `env { … }`.
"""

from __future__ import annotations

from pathlib import Path

from ..resources import stdlib_dir
from ..syntax import nodes as n
from ..syntax.loader import Module
from ..syntax.shellwords import contexts_of
from .scope import Reporter

# Environment variables a suggested name must not replace.
_RESERVED_ENV = frozenset({"PATH", "HOME", "IFS", "SHELL", "USER", "PWD", "OLDPWD", "ENV",
                           "BASH_ENV", "CDPATH", "LANG", "TERM", "TMPDIR", "PS4", "LD_PRELOAD",
                           "LD_LIBRARY_PATH", "HOSTNAME"})


def check_command_quoting(report: Reporter, module: Module, command: n.String) -> None:
    """E280 for each interpolation of a `run` command where no shell quoting is safe."""
    holes = [p for p in command.parts if p.kind == "interpolation"]
    if not holes:
        return
    template = [p.value if p.kind == "text" else None for p in command.parts]
    for part, context in zip(holes, contexts_of(template), strict=True):
        expr = part.expr
        if context.safe or (expr.kind == "call" and expr.func.name == "raw"):
            continue
        source = module.source.text[expr.span.start:expr.span.end].strip()
        name = env_name(expr)
        report.error("E280", f"no quoting is safe for `{{{{ {source} }}}}` {context.reason}",
                     part.span, f"pass the value through `env {{ {name} = {source} }}` and "
                     f"write \"${name}\" in the command", *quoting_notes(context.reason, name))


def in_stdlib(path: Path) -> bool:
    """Whether a module is one of the shipped `std/` modules."""
    return stdlib_dir() in path.resolve().parents


def env_name(expr) -> str:
    """An environment variable name for an interpolated expression: `release.dir` ->
    RELEASE_DIR; VALUE where the expression names nothing simple."""
    parts: list[str] = []
    while expr.kind == "field":
        parts.insert(0, expr.name)
        expr = expr.target
    if expr.kind == "call" and len(expr.args) == 1:
        expr = expr.args[0]
    if expr.kind != "name":
        return "VALUE"
    name = "_".join([expr.name, *parts]).upper()
    return f"{name}_VALUE" if name in _RESERVED_ENV else name


def quoting_notes(reason: str, name: str) -> list[str]:
    """What to write instead, where `"$NAME"` alone is not the whole fix (E280)."""
    if "here-document" in reason:
        return [f"in a here-document write ${name} (with an unquoted delimiter, <<EOF): the "
                "shell inserts the value as text"]
    if "arithmetic" in reason or "`[[ … ]]`" in reason:
        return ["or do the arithmetic in the runbook (`sleep {{ minutes * 60 }}`); bash also "
                "evaluates a variable's value as arithmetic, so check that it is a number "
                f"first (case ${name} in ''|*[!0-9]*) exit 1;; esac)"]
    if "`eval`" in reason:
        return [f"let eval expand it: eval '… \"${name}\"'"]
    if "comment" in reason:
        return ["or leave it out of the comment: the shell never reads it (a `note` records "
                "the value in the transcript)"]
    if "`ssh`" in reason:
        return [f"send it on stdin: printf '%s' \"${name}\" | ssh HOST 'read -r v; …'"]
    return []
