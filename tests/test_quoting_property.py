"""Quoting by shell context, as a property: whatever the value, a command that passes the
static check prints exactly that value under dash and bash, and runs nothing else.

Templates are built from small shell snippets that print their interpolations (plain words,
`"…"`, `'…'`, `${X:-…}`, `$NAME` before a value, `case` subjects, here-documents and
comments without interpolations between them), wrapped in `$(…)`, backquotes, subshells,
groups, functions, `if` and pipes, several to a script; others put an interpolation where
no quoting is safe (a here-document, a comment, arithmetic, `eval`, `sh -c`). Values are
hostile text: quotes, `$(…)`, backquotes, `;`, `&&`, line breaks, `EOF` lines,
backslashes, unicode, `{{…}}`, leading dashes, globs, the empty string. A planted command
creates the file `canary`; it must never exist.

CI runs a bounded number of examples (the `ci` profile, in conftest.py); a longer search:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_quoting_property.py
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from runbook_lang.evaluation.evaluate import Evaluator
from runbook_lang.syntax import nodes as n
from runbook_lang.syntax.shellwords import BACKQUOTED_PARAM, BACKQUOTED_RAW, contexts_of
from runbook_lang.syntax.source import Span

SHELLS = [["/usr/bin/dash", "-c"], ["/usr/bin/bash", "-c"], ["/usr/bin/bash", "--posix", "-c"]]
HOLE = "\0"  # marks an interpolation in a snippet's text (never in a real command)

BASH_REREADS = {BACKQUOTED_PARAM, BACKQUOTED_RAW}

pytestmark = pytest.mark.skipif(not all(Path(s[0]).exists() for s in SHELLS),
                                reason="needs /usr/bin/dash and /usr/bin/bash")


@dataclass(frozen=True)
class Snippet:
    """Shell text with holes, whether the check must accept it, and what it prints: text,
    and the index of a hole where that hole's value is printed."""

    text: str
    safe: bool
    prints: tuple[str | int, ...] = ()

    @property
    def holes(self) -> int:
        return self.text.count(HOLE)


def leaf(text: str, safe: bool = True, prints: tuple[str | int, ...] | None = None) -> Snippet:
    text = text.replace("@", HOLE)
    return Snippet(text, safe, tuple(range(text.count(HOLE))) if prints is None else prints)


SAFE_LEAVES = [
    leaf("printf '%s' @"),
    leaf("printf '%s' @@"),
    leaf("printf '%s' \"@\""),
    leaf("printf '%s' '@'"),
    leaf("printf '%s' \"a@b\"", prints=("a", 0, "b")),
    leaf("printf '%s' 'a@b'", prints=("a", 0, "b")),
    leaf("printf '%s' a@b", prints=("a", 0, "b")),
    leaf("printf '%s' \"it's @\"", prints=("it's ", 0)),
    leaf("printf '%s' \"${UNSET_X:-@}\""),
    leaf("printf '%s' ${UNSET_X:-@}"),
    leaf("printf '%s' \"${UNSET_X:-a@}\"", prints=("a", 0)),
    leaf("printf '%s' \"${UNSET_X:-\"@\"}\""),
    leaf("printf '%s' ${UNSET_X:-\"@\"}"),
    leaf("printf '%s' ${UNSET_X:-'@'}"),
    leaf("printf '%s' \"${SET_H:+@}\""),
    leaf("printf '%s' \"$SET_H@\"", prints=("h", 0)),
    leaf("printf '%s' $SET_H@", prints=("h", 0)),
    leaf("printf '%s' \"${SET_H}@\"", prints=("h", 0)),
    leaf("v=@; printf '%s' \"$v\""),
    leaf("v=@ && printf '%s' \"$v\""),
    leaf("export V=@; printf '%s' \"$V\""),
    leaf("printf '%s' @ # it's fine"),
    leaf("case @ in *) printf '%s' ok;; esac", prints=("ok",)),
    leaf("case x in x) printf '%s' @;; esac"),
    leaf("printf '%s' @ | cat"),
    leaf("printf '%s' @ >&1 2>/dev/null"),
    leaf("sh -c 'printf \"%s\" \"$1\"' sh @"),
    leaf("[ -z @ ] || :; printf '%s' @", prints=(1,)),
    leaf("printf '%s' @ \\\n  >/dev/null; printf '%s' @", prints=(1,)),
]

UNSAFE_LEAVES = [
    leaf("cat <<EOF\n@\nEOF", safe=False),
    leaf("cat <<'EOF'\nit's @\nEOF", safe=False),
    leaf("cat <<-\"EOF\"\n\t@\n\tEOF", safe=False),
    leaf(": # don't @", safe=False),
    leaf("printf '%s' @ # don't @ stop", safe=False),
    leaf("printf '%s' $((@))", safe=False),
    leaf("printf '%s' \"$((1 + @))\"", safe=False),
    leaf("eval printf \"'%s'\" @", safe=False),
    leaf("eval \"printf '%s' @\"", safe=False),
    leaf("sh -c \"printf '%s' @\"", safe=False),
    leaf("bash -ec @", safe=False),
    leaf("printf '%s' \"${UNSET_X#@}\"", safe=False),
    leaf("unset @", safe=False),
    leaf("printf '%s' \\@", safe=False),
    leaf("printf '%s' $@", safe=False),
]

# Text without holes that earlier quoting trackers misread: it must not change what follows.
FILLERS = [
    "# don't stop",
    ": \"it's\"",
    ": 'say \"hi\"'",
    "cat <<EOF >/dev/null\nit's \"quoted\" $(true) `true`\nEOF",
    "cat <<'EOF' >/dev/null\ndon't\nEOF",
    ": $(( 1 + 2 )) ${UNSET_X:-'}'} \"${UNSET_X:-\"}\"}\"",
    ": `echo \\`echo x\\``",
    "case y in (y) : ;; esac",
]


def wrap(inner: Snippet, how: str) -> Snippet:
    """The same output, from inside another construct."""
    text, safe, dot = inner.text, inner.safe, (*inner.prints, ".")
    if how == "subst":
        return Snippet(f'printf \'%s\' "$( {text}\nprintf .)"', safe, dot)
    if how == "subst-assign":
        return Snippet(f'x=$( {text}\nprintf .); printf \'%s\' "$x"', safe, dot)
    if how == "backquote":  # within double quotes: \ ` $ and " are escaped for the layer
        escaped = re.sub(r'([\\`$"])', r"\\\1", text)
        return Snippet(f'printf \'%s\' "`{escaped}\nprintf .`"', safe, dot)
    if how == "backquote-plain":
        escaped = re.sub(r"([\\`$])", r"\\\1", text)
        return Snippet(f'x=`{escaped}\nprintf .`; printf \'%s\' "$x"', safe, dot)
    if how == "eval":
        quoted = text.replace("'", "'\\''")
        return Snippet(f"eval '{quoted}'", safe and inner.holes == 0, inner.prints)
    shapes = {"subshell": "( {}\n)", "group": "{{ {}\n}}", "function": "f() {{\n{}\n}}; f",
              "if": "if true; then\n{}\nfi", "pipe": "{{ {}\n}} | cat"}
    return Snippet(shapes[how].format(text), safe, inner.prints)


WRAPPERS = ["subst", "subst-assign", "backquote", "backquote-plain", "subshell", "group",
            "function", "if", "pipe", "eval"]


@st.composite
def snippets(draw) -> Snippet:
    snippet = draw(st.sampled_from(SAFE_LEAVES + UNSAFE_LEAVES))
    for how in draw(st.lists(st.sampled_from(WRAPPERS), max_size=3)):
        snippet = wrap(snippet, how)
    return snippet


@st.composite
def scripts(draw) -> Snippet:
    """Fillers and snippets, one to a line."""
    parts = draw(st.lists(st.one_of(snippets(), st.sampled_from(FILLERS).map(
        lambda text: Snippet(text, True))), min_size=1, max_size=4))
    prints: list[str | int] = []
    offset = 0
    for part in parts:
        prints += [p + offset if isinstance(p, int) else p for p in part.prints]
        offset += part.holes
    return Snippet("\n".join(p.text for p in parts), all(p.safe for p in parts),
                   tuple(prints))


TOKENS = ["'", '"', "\\", "$", "`", "$(touch canary)", "`touch canary`", ";touch canary;",
          "&& touch canary", "\n", "\nEOF\ntouch canary\n", "EOF", "'\\''", "{{x}}", "-n",
          "--", "*", "?", "[a]", "~", "é", "日本", " ", "\t", "}", "{", "#", "!", "|", "&",
          ">", "<", "(", ")", "a[$(touch canary)]", "$((1))", "${HOME}", "$HOME", "%s", "=",
          "X=1", "\\n", "\"; touch canary; \"", "'; touch canary; '", "}; touch canary; {",
          ">(", "<(", ">(touch canary)", "\\'", "{>(", "{x}<("]
# Any character but NUL (refused, see test_quoting.py) and surrogates other than the ones
# Python uses for bytes that are not UTF-8 (as in a `--param` given such bytes).
characters = st.one_of(
    st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
    st.integers(0xDC80, 0xDCFF).map(chr))
values = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(characters, max_size=3)),
                  max_size=6).map("".join)


def command_string(text: str) -> n.String:
    """A `run` command as the parser builds it: text parts and interpolations of `v0`, …"""
    span = Span.make(line=1, column=1, end_line=1, end_column=1, start=0, end=0)
    parts: list = []
    for index, piece in enumerate(text.split(HOLE)):
        if index:
            name = n.Name.make(span=span, name=f"v{index - 1}", kind="name")
            parts.append(n.Interpolation.make(span=span, expr=name, kind="interpolation"))
        if piece:
            parts.append(n.Text.make(span=span, value=piece, kind="text"))
    return n.String.make(span=span, parts=parts, kind="string")


def expected_output(snippet: Snippet, chosen: list[str]) -> str:
    return "".join(chosen[p] if isinstance(p, int) else p for p in snippet.prints)


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def run_everywhere(command: str, cwd: Path) -> list[subprocess.CompletedProcess]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SET_H": "h", "LC_ALL": "C.UTF-8"}
    return [subprocess.run([*shell, os.fsencode(command)], cwd=cwd, env=env, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=20) for shell in SHELLS]


@given(script=scripts(), data=st.data())
def test_a_checked_command_prints_exactly_its_values(script: Snippet, data, workdir) -> None:
    chosen = [data.draw(values, label=f"v{k}") for k in range(script.holes)]
    contexts = contexts_of(_interleave(script.text.split(HOLE)))
    rejected = [c.reason for c in contexts if not c.safe]
    if script.safe:
        # The refusals of places that are quotable in dash: where bash reads the text inside
        # backquotes before undoing their backslashes (`$(…)` within backquotes within
        # `"…"`, `"${X:-…}"` within `$(…)` within backquotes).
        assert all(reason in BASH_REREADS for reason in rejected), (script.text, rejected)
    else:
        assert rejected, script.text
    event("rejected by the check" if rejected else "run by dash and bash")
    if rejected:
        return
    command = Evaluator(lambda name: chosen[int(name[1:])]).render(
        command_string(script.text), quote=True)
    for shell, result in zip(SHELLS, run_everywhere(command, workdir), strict=True):
        assert not (workdir / "canary").exists(), (shell, command)
        assert result.stderr == b"", (shell, command, result.stderr)
        expected = expected_output(script, chosen).encode("utf-8", "surrogateescape")
        assert result.stdout == expected, (shell, command)


def _interleave(texts: list[str]) -> list[str | None]:
    out: list[str | None] = []
    for index, text in enumerate(texts):
        if index:
            out.append(None)
        out.append(text)
    return out
