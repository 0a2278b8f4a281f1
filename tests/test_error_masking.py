"""Errors that show a value never show a secret (LANGUAGE.md §6.2).

An `EvalError` keeps the values it shows apart from its text; `render(mask)` masks each
value before it is quoted and cut, so that neither `repr`'s escapes nor the cut to 80
characters can keep a secret from the mask. Checked as a property over secrets with quotes,
backslashes, newlines, unicode and long tokens, for every kind of error that shows a value,
and end to end through `runbook run`.
"""

from __future__ import annotations

import json

import pytest
from conftest import events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook_lang.errors import EvalError
from runbook_lang.evaluation.evaluate import Evaluator
from runbook_lang.evaluation.masking import Masker
from runbook_lang.syntax.parser import parse_source
from runbook_lang.syntax.source import Source

# Expressions whose errors show a value computed from the secret `tok` (a string) or from
# the object `obj`, whose only field is named by the secret.
SHOWING = [
    "number(tok)",
    "number(\"K=\" + tok)",
    "int(tok)",
    "float(tok + \"=K\")",
    "bool(tok)",
    "tok < 1",
    "1 >= tok",
    "not tok",
    "tok and true",
    "\"x\" matches \"(\" + tok",
    "obj.missing",
    "[1, 2][99]",
]

# No `*` (the mask's own text) and no space (the messages' own words are separated by one):
# a piece of the secret found in a message then comes from the secret, not from the words.
ALPHABET = st.sampled_from(list("'\"\\\n\t`$%{}()[]0123456789.-xyzqü✓漢🙂ß\u200b\x7f"))
SECRETS = st.one_of(
    st.text(ALPHABET, min_size=4, max_size=40),
    st.text(ALPHABET, min_size=81, max_size=400),  # longer than the cut
)


def parse(expr: str):
    ast, diagnostics = parse_source(Source("e.runbook", f"let v = {expr}\n"))
    assert ast is not None, diagnostics
    return ast.items[0].value


PARSED = {expr: parse(expr) for expr in SHOWING}


def error_of(expr: str, secret: str) -> EvalError | None:
    values = {"tok": secret, "obj": json.loads(json.dumps({secret: 1}))}
    try:
        Evaluator(values.get).eval(PARSED[expr])
    except EvalError as error:
        return error
    return None


def pieces(secret: str, size: int = 4) -> set[str]:
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(secret=SECRETS)
def test_a_rendered_error_holds_no_piece_of_the_secret(secret: str) -> None:
    mask = Masker([secret]).mask
    raised = 0
    for expr in SHOWING:
        error = error_of(expr, secret)
        if error is None:  # e.g. number() of a secret made of digits
            continue
        raised += 1
        shown = error.render(mask)
        # What the mask leaves: the message with every value wholly masked.
        left = error.render(lambda _text: "***")
        leaked = {piece for piece in pieces(secret) if piece in shown and piece not in left}
        assert not leaked, (expr, shown)
    assert raised >= 6


@pytest.mark.parametrize("secret", ["it's \"q\" \\ done\nnext", "ü✓" * 60, "x" * 300])
def test_without_the_mask_the_same_errors_would_show_the_secret(secret: str) -> None:
    """The property above can fail: `str(error)` shows the values (quoted and cut)."""
    error = error_of("number(tok)", secret)
    assert error is not None
    assert any(piece in str(error) for piece in pieces(secret))
    assert not any(piece in error.render(Masker([secret]).mask) for piece in pieces(secret))


def test_values_are_shown_as_before_without_a_mask() -> None:
    error = EvalError("number(): {0} is not a number", "a" * 100)
    assert str(error) == "number(): " + repr("a" * 80) + " is not a number"
    # A value's own `{0}` is not read as a place for another value.
    assert str(EvalError("{0} and {1}", "{1}", "x")) == "'{1}' and 'x'"


# No run of 4 hex digits or digits: pieces of it must not turn up by chance in the hashes,
# run ids and times of the transcript.
SECRET = "s3cr'et\\tok\"en-ü✓-qrstuvwxyzQRSTUVWXYZ"


def test_a_run_failing_on_a_secret_shows_it_masked(ws, tmp_path) -> None:
    (ws.root / "convert.runbook").write_text(
        'secret tok from env "TOK"\n'
        'step s "S" { set n = number("id=" + tok) note "{{n}}" }\n', encoding="utf-8")
    result = ws.runbook("run", "convert.runbook", env={"TOK": SECRET})
    assert result.exit_code == 1, result.output
    assert "number(): 'id=***' is not a number" in result.output
    transcript = "\n".join(json.dumps(r, ensure_ascii=False) for r in result.records())
    for text in (result.output, transcript):
        assert not any(piece in text for piece in pieces(SECRET)), text
    assert events(result.records(), "step_finished", step="s")
