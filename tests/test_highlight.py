"""Highlighting: the Pygments lexer, found through its entry point as `pygmentize` finds it.

Every shipped runbook, module and valid fixture lexes without an error token; the token
kinds of a sample (keywords, strings with interpolation, durations, comments, contextual
words used as names) are a snapshot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from frontend import FIXTURES, user_env
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Whitespace

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "examples").rglob("*.runbook")) + sorted(
    (ROOT / "stdlib").glob("*.runbook")) + sorted((FIXTURES / "valid").rglob("*.runbook"))
SAMPLE = FIXTURES / "highlight" / "sample.runbook"


def tokens(text: str) -> list[tuple[str, str]]:
    lexer = get_lexer_by_name("runbook")
    return [(str(kind).removeprefix("Token."), value) for kind, value in lexer.get_tokens(text)
            if kind not in Whitespace]


def test_the_lexer_is_found_by_name_and_by_file_name():
    assert get_lexer_by_name("runbook").name == "Runbook"
    assert get_lexer_for_filename("deploy.runbook").name == "Runbook"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file_lexes_without_an_error_token(path: Path):
    lexer = get_lexer_by_name("runbook")
    text = path.read_text(encoding="utf-8")
    pieces = list(lexer.get_tokens(text))
    errors = [value for kind, value in pieces if kind in Error]
    assert errors == []
    assert "".join(value for _, value in pieces) == text + ("" if text.endswith("\n") else "\n")


def test_the_shipped_files_are_many():
    assert len(SHIPPED) > 60


def test_token_kinds_of_a_sample(snapshot):
    listing = "\n".join(f"{kind:<24} {value!r}"
                        for kind, value in tokens(SAMPLE.read_text(encoding="utf-8")))
    assert listing == snapshot


def test_contextual_words_as_names_are_not_keywords():
    text = "let every = 2\nstep s \"S\" {\n  expect body contains \"ok\"\n}\n"
    kinds = dict((value, kind) for kind, value in tokens(text))
    assert kinds["every"] == "Name.Variable" and kinds["body"] == "Name"
    assert kinds["expect"] == "Keyword" and kinds["contains"] == "Operator.Word"


def test_a_broken_string_is_an_error_token_and_lexing_goes_on():
    pieces = tokens('note "unterminated\nstep s "S" {}\n')
    assert pieces[:4] == [("Keyword", "note"), ("Literal.String.Double", '"'),
                          ("Literal.String.Double", "unterminated"), ("Error", "\n")]
    assert ("Keyword.Declaration", "step") in pieces


def test_pygmentize_highlights_a_runbook():
    pygmentize = Path(sys.executable).with_name("pygmentize")
    result = subprocess.run([str(pygmentize), "-l", "runbook", "-f", "html", str(SAMPLE)],
                            capture_output=True, text=True, env=user_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert '<span class="kd">step</span>' in result.stdout
    assert '<span class="si">{{</span>' in result.stdout


def test_the_lexer_knows_every_reserved_word_and_builtin():
    from runbook_lang import highlight
    from runbook_lang.analysis.typecheck import BUILTINS, RESERVED

    words = {*highlight.DECLARATIONS, *highlight.RESERVED, *highlight.OPERATOR_WORDS,
             "true", "false"}
    assert words == set(RESERVED)
    assert set(BUILTINS) <= set(highlight.BUILTINS)
