"""One table per concept in the front end: durations, builtins, string pieces.

Durations are read and printed with one unit table; the builtins the checker knows are the
ones the evaluator runs, with the arity and result type the checker reports; the fast path
for plain strings splits them exactly as the general scanner does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lang.analysis.analyzer import analyse
from runbook_lang.evaluation.builtins import BUILTINS
from runbook_lang.evaluation.evaluate import Evaluator
from runbook_lang.evaluation.params import parse_duration
from runbook_lang.evaluation.values import Duration, type_name
from runbook_lang.syntax import strings
from runbook_lang.syntax.lexicon import DURATION_UNITS, duration_ms
from runbook_lang.syntax.loader import Loader
from runbook_lang.syntax.parser import parse_source
from runbook_lang.syntax.source import Source

# ---------------------------------------------------------------------- durations


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=10**13))
def test_a_duration_reads_back_as_it_prints(ms: int) -> None:
    assert duration_ms(str(Duration(ms))) == ms


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from([u for u, _ in DURATION_UNITS]),
                          st.integers(min_value=0, max_value=999)), min_size=1, max_size=5))
def test_params_and_the_parser_read_durations_alike(parts: list[tuple[str, int]]) -> None:
    text = "".join(f"{amount}{unit}" for unit, amount in parts)
    try:
        from_param = parse_duration(text).ms
    except ValueError:
        from_param = None
    ast, diagnostics = parse_source(Source("d.runbook", f"let d = {text}\n"))
    value = ast.items[0].value
    from_parser = value.ms if value.kind == "duration" else None
    assert from_param == from_parser
    assert (from_parser is None) == any(d.code == "E102" for d in diagnostics)


def test_a_constant_duration_is_shown_as_written(tmp_path: Path) -> None:
    path = tmp_path / "d.runbook"
    path.write_text('param wait_for: duration = 90s { choices [1m, 2m] }\n'
                    'step s "S" { wait wait_for }\n')
    [problem] = analyse(Loader().load(path, "d.runbook"))
    assert problem.message == "the default 90s of param `wait_for` is not one of its choices"
    assert problem.hints == ("choices: 1m, 2m",)


# ---------------------------------------------------------------------- builtins

SAMPLES = {"number": ["42"], "int": ["7"], "float": ["1.5"], "str": [3], "bool": ["yes"],
           "len": [[1, 2]], "lower": ["A"], "upper": ["a"], "trim": [" a "],
           "json": ['{"a": 1}'], "getenv": ["RUNBOOK_TEST_UNSET", "fallback"], "raw": ["x y"],
           "to_json": [{"a": [1, "x"]}]}


def test_every_builtin_has_a_sample() -> None:
    assert set(SAMPLES) == set(BUILTINS)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_checker_types_a_builtin_as_the_evaluator_computes_it(name: str) -> None:
    builtin = BUILTINS[name]
    value = builtin.apply(*SAMPLES[name])
    if builtin.result == "number":
        assert type_name(value) in ("int", "float")
    elif builtin.result is not None:
        assert type_name(value) == builtin.result


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_checker_counts_arguments_by_the_table(tmp_path: Path, name: str) -> None:
    builtin = BUILTINS[name]
    counts = {}
    for given_args in range(builtin.max_args + 2):
        path = tmp_path / f"{name}{given_args}.runbook"
        args = ", ".join(['"1"'] * given_args)
        path.write_text(f'let v = {name}({args})\nstep s "S" {{ note "{{{{v}}}}" }}\n')
        counts[given_args] = [d.code for d in analyse(Loader().load(path, path.name))
                              if d.code == "E271"]
    assert [n for n, codes in counts.items() if not codes] == \
        list(range(builtin.min_args, builtin.max_args + 1))


def test_the_evaluator_calls_the_tables_implementation() -> None:
    ast, _ = parse_source(Source("b.runbook", 'let v = upper(trim(" ok "))\n'))
    assert Evaluator(lambda name: None).eval(ast.items[0].value) == "OK"


# ---------------------------------------------------------------------- strings

plain = st.lists(st.sampled_from(["{{", "}}", "{", "}", "a", " ", "x1", "\n", "é"]),
                 max_size=16).map("".join)


@settings(deadline=None)
@given(text=plain, base=st.integers(min_value=0, max_value=50))
def test_plain_text_splits_as_the_general_scanner_splits_it(text: str, base: int) -> None:
    linear = range(base, base + len(text) + 1)
    assert strings._scan_plain(text, linear) == strings._scan(text, linear)
    table = [base + 2 * i for i in range(len(text) + 1)]
    assert strings._scan_plain(text, table) == strings._scan(text, table)
