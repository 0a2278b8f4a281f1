"""`runbook fmt`: the canonical layout, wrapped headers, idempotence, and meaning kept.

Every shipped runbook, module and valid fixture is formatted twice: the second pass changes
nothing and the AST never changes. Generated layouts (hypothesis) break lines at random
spaces between tokens and indent at random: the formatter brings them all to one layout.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from frontend import VALID, ids, runbook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook_lang.syntax.formatting import _shape, format_source
from runbook_lang.syntax.parser import parse_source
from runbook_lang.syntax.source import Source

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "examples").rglob("*.runbook")) + sorted(
    (ROOT / "stdlib").glob("*.runbook")) + VALID + sorted(
    (ROOT / "tests" / "fixtures" / "valid" / "modules").glob("*.runbook"))

WRAPPED = """\
param environment: string
= "staging" {
choices ["development",
"staging"]
}
let total = 1 +
2
step s "Title"
for h in ["a", "b"] {
when environment == "staging"
and total > 2
watch "w" for 2m
every 10s
  tolerate 1 {
run "true"
    expect exit_code == 0
and stdout == ""
}
if total == 3 {
note "x"
}
else {
note "y"
}
# a comment stays at the level of the block
  check "c" {
      run "x"
      expect len(
      "ab") == 2
  }
}
task t(a,
b) {
note "{{a}}"
}
"""

WRAPPED_FORMATTED = """\
param environment: string
  = "staging" {
  choices ["development",
    "staging"]
}
let total = 1 +
  2
step s "Title"
  for h in ["a", "b"] {
  when environment == "staging"
    and total > 2
  watch "w" for 2m
    every 10s
    tolerate 1 {
    run "true"
    expect exit_code == 0
      and stdout == ""
  }
  if total == 3 {
    note "x"
  }
  else {
    note "y"
  }
  # a comment stays at the level of the block
  check "c" {
    run "x"
    expect len(
      "ab") == 2
  }
}
task t(a,
  b) {
  note "{{a}}"
}
"""


def fmt(text: str) -> str:
    result = format_source(text, "case.runbook")
    assert result.error is None, result.error
    return result.text


def shape(text: str):
    tree, problems = parse_source(Source("case.runbook", text))
    assert problems == []
    return _shape(tree)


def test_a_wrapped_header_continues_one_level_deeper():
    assert fmt(WRAPPED) == WRAPPED_FORMATTED


def test_fmt_rewrites_a_wrapped_header_in_place(tmp_path):
    path = tmp_path / "wrapped.runbook"
    path.write_text(WRAPPED, encoding="utf-8")
    result = runbook("fmt", str(path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"reformatted {path}\n")
    assert path.read_text(encoding="utf-8") == WRAPPED_FORMATTED
    again = runbook("fmt", "--check", str(path), cwd=tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


@pytest.mark.parametrize("path", SHIPPED, ids=ids(SHIPPED))
def test_fmt_is_idempotent_and_keeps_the_ast(path: Path):
    text = path.read_text(encoding="utf-8")
    once = fmt(text)
    assert fmt(once) == once
    assert shape(once) == shape(text)


def test_the_shipped_files_are_many():
    # The parametrisation above would pass vacuously on an empty glob.
    assert len(SHIPPED) > 60


def break_points(text: str) -> list[int]:
    """Offsets of spaces between tokens: outside strings, interpolations and comments."""
    points = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith('"""', i):
            end = text.find('"""', i + 3)
            i = n if end < 0 else end + 3
        elif text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif text[i] == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            if text[i] == " ":
                points.append(i)
            i += 1
    return points


def scramble(text: str, rng: random.Random, breaks: float) -> str:
    """The same runbook laid out at random: lines broken at some spaces, random indents."""
    chars = list(text)
    for point in break_points(text):
        if rng.random() < breaks:
            chars[point] = "\n"
    lines = "".join(chars).split("\n")
    out, in_long = [], False
    for line in lines:
        # Lines inside a triple-quoted string are its text: only the rest is re-indented.
        out.append(line if in_long else " " * rng.randrange(0, 9) + line.lstrip())
        if line.count('"""') % 2:
            in_long = not in_long
    return "\n".join(out)


MATERIAL = [p for p in SHIPPED if 0 < p.stat().st_size < 20_000]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(MATERIAL) - 1), seed=st.integers(0, 2**32 - 1),
       breaks=st.sampled_from([0.0, 0.05, 0.3]))
def test_any_layout_of_a_runbook_formats_to_one_stable_layout(index, seed, breaks):
    text = MATERIAL[index].read_text(encoding="utf-8")
    scrambled = scramble(text, random.Random(seed), breaks)
    once = fmt(scrambled)
    assert fmt(once) == once
    assert shape(once) == shape(text)
    if breaks == 0.0:
        # Only the indentation was changed: the layout comes back exactly.
        assert once == fmt(text)
