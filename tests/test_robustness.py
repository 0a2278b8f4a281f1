"""No input makes `runbook check` print a Python traceback.

Each case feeds the command something hostile or broken. The answer is always a message
for a person and exit code 2 (or 0 where the input is in fact a valid runbook), quickly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from frontend import runbook

from runbook_lang.limits import MAX_STRING_CHARS

MAX_SECONDS = 20


def check(tmp_path: Path, content: bytes | str | None, *extra: str, name="input.runbook"):
    """Write `content` (unless None) to a file and run `runbook check` on it."""
    if content is not None:
        data = content.encode() if isinstance(content, str) else content
        (tmp_path / name).write_bytes(data)
    return runbook("check", *extra, name, cwd=tmp_path, timeout=MAX_SECONDS)


def assert_refused(result, *phrases: str) -> None:
    """Exit code 2, a message naming the problem, and no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr


def assert_clean(result) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Traceback" not in result.stdout


def test_binary_file_with_nul_bytes(tmp_path: Path) -> None:
    result = check(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    assert_refused(result, "error[E001]", "input.runbook: not a text file: a NUL byte")


def test_invalid_utf8(tmp_path: Path) -> None:
    result = check(tmp_path, b'step s "S" {\n  note "caf\xe9"\n}\n')
    assert_refused(result, "byte 0xe9 is not UTF-8 on line 2")


def test_unterminated_string(tmp_path: Path) -> None:
    result = check(tmp_path, 'step s "S" {\n  run "echo\n}\n')
    assert_refused(result, "unterminated string", "input.runbook:2:7")


def test_unterminated_triple_string(tmp_path: Path) -> None:
    result = check(tmp_path, 'step s "S" {\n  run """\n    echo\n}\n')
    assert_refused(result, 'unterminated string: `"""`', "input.runbook:2:7")


def test_unterminated_block(tmp_path: Path) -> None:
    result = check(tmp_path, 'step s "S" {\n  if true {\n    note "x"\n')
    assert_refused(result, "`{` is never closed", "input.runbook:2:11")


def test_two_thousand_nested_blocks(tmp_path: Path) -> None:
    text = 'step s "S" {\n' + "if true {\n" * 2000 + "}\n" * 2001
    assert_refused(check(tmp_path, text), "error[E101]", "nest more than 100 levels")


def test_two_thousand_nested_parentheses(tmp_path: Path) -> None:
    text = "let x = " + "(" * 2000 + "1" + ")" * 2000 + "\n"
    assert_refused(check(tmp_path, text), "error[E101]", "input.runbook:1:")


def test_deeply_nested_lists(tmp_path: Path) -> None:
    text = "let x = " + "[" * 5000 + "]" * 5000 + "\n"
    assert_refused(check(tmp_path, text), "error[E101]")


def test_nesting_just_under_the_limit_is_fine(tmp_path: Path) -> None:
    """98 nested `if`s and a 90-deep list: deep but legal, and --ast can still print them."""
    text = ('step s "S" {\n' + "if true {\n" * 98 + 'note "{{ ' + "[" * 90 + "]" * 90
            + ' }}"\n' + "}\n" * 99)
    result = check(tmp_path, text, "--ast")
    assert result.returncode == 2
    assert "error[E101]" in result.stderr  # the interpolation pushes it past the depth limit
    text = 'step s "S" {\n' + "if true {\n" * 98 + 'note "x"\n' + "}\n" * 99
    result = check(tmp_path, text, "--ast")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{"kind": "file"')


def test_five_thousand_term_expression(tmp_path: Path) -> None:
    text = "let x = " + " + ".join(["1"] * 5000) + '\nstep s "S" { note "{{x}}" }\n'
    result = check(tmp_path, text)
    assert_refused(result, "error[E101]", "input.runbook:1:9", "split a long expression")


def test_string_literal_at_the_limit(tmp_path: Path) -> None:
    text = 'let big = "' + "a" * MAX_STRING_CHARS + '"\nstep s "S" { note "{{big}}" }\n'
    assert_clean(check(tmp_path, text))


def test_two_megabyte_string(tmp_path: Path) -> None:
    """A literal beyond the limit (LANGUAGE.md §6.7) is refused, and says how to do instead."""
    text = 'let big = "' + "a" * 2_000_000 + '"\nstep s "S" { note "{{big}}" }\n'
    result = check(tmp_path, text)
    assert_refused(result, "error[E105]", "input.runbook:1:11", "string literal too long")
    assert "read large text at run time" in result.stderr
    assert len(result.stderr) < 2000


def test_two_megabyte_line_with_an_error_at_its_end(tmp_path: Path) -> None:
    """The source line is shown as a window around the caret, not as 2 MB of text."""
    text = 'let big = "' + "a" * 2_000_000 + '" + nope\n'
    result = check(tmp_path, text)
    assert_refused(result, "undefined name `nope`", "input.runbook:1:2000016")
    assert len(result.stderr) < 2000
    rendered = result.stderr[result.stderr.index("error[E200]"):]
    shown = re.search(r"^1 \| (.*)$", rendered, re.MULTILINE).group(1)
    caret = re.search(r"^  \| ( *\^+)$", rendered, re.MULTILINE).group(1)
    assert shown.startswith("…")
    assert shown[len(caret) - 4:len(caret)] == "nope"


def test_two_megabyte_unterminated_string(tmp_path: Path) -> None:
    result = check(tmp_path, 'let big = "' + "a" * 2_000_000 + "\n")
    assert_refused(result, "unterminated string", "input.runbook:1:11")
    assert len(result.stderr) < 2000


def test_empty_file_is_a_valid_runbook(tmp_path: Path) -> None:
    result = check(tmp_path, b"")
    assert_clean(result)
    assert result.stdout == "input.runbook: ok\n"


def test_only_comments_is_a_valid_runbook(tmp_path: Path) -> None:
    """Comments are white space: a file of comments is an empty runbook, like an empty file."""
    result = check(tmp_path, "# nothing yet\n# still nothing")
    assert_clean(result)


def test_control_characters_are_shown_escaped(tmp_path: Path) -> None:
    result = check(tmp_path, 'step s "S" {\x0c\x1b }\n')
    assert_refused(result, r"unexpected character '\x1b'", "input.runbook:1:14")
    assert "\x1b" not in result.stderr
    assert '1 | step s "S" {\u240c\u241b }\n' in result.stderr


def test_a_directory(tmp_path: Path) -> None:
    (tmp_path / "input.runbook").mkdir()
    result = check(tmp_path, None)
    assert_refused(result, "input.runbook: is a directory")


def test_a_loop_of_symbolic_links(tmp_path: Path) -> None:
    (tmp_path / "a.runbook").symlink_to("b.runbook")
    (tmp_path / "b.runbook").symlink_to("a.runbook")
    result = check(tmp_path, None, name="a.runbook")
    assert_refused(result, "a.runbook: cannot read: a loop of symbolic links")


def test_a_missing_file(tmp_path: Path) -> None:
    result = check(tmp_path, None, name="missing.runbook")
    assert_refused(result, "missing.runbook: no such file")


def test_unknown_flag(tmp_path: Path) -> None:
    result = check(tmp_path, 'step s "S" {}\n', "--frobnicate")
    assert_refused(result, "unrecognized arguments: --frobnicate")


def test_no_arguments(tmp_path: Path) -> None:
    result = runbook(cwd=tmp_path)
    assert_refused(result, "a command is required", "usage: runbook")
    assert result.stdout == ""


def test_check_without_a_file(tmp_path: Path) -> None:
    result = runbook("check", cwd=tmp_path)
    assert_refused(result, "the following arguments are required: FILE")


def test_ast_and_json_output_together(tmp_path: Path) -> None:
    result = check(tmp_path, 'step s "S" {}\n', "--ast", "--output", "json")
    assert_refused(result, "--ast and --output json")
    assert result.stdout == ""


@pytest.mark.parametrize("text", [
    '"', '"""', "{", "}", "((", "step", 'step s "S" {', "let x =", "import", "@@@",
    "let x = 1 < 2 < 3 < 4", 'step s "S" { note "{{" }', 'step s "S" { note "{{ \\" }}" }',
    'let s = "\\', "param p: int = 1 { choices [", "\ufeff\ufeff", "let x = 1e9",
])
def test_fragments(tmp_path: Path, text: str) -> None:
    """Truncated and garbled fragments: a positioned error each time."""
    result = check(tmp_path, text)
    assert_refused(result, "input.runbook:")


def test_python_warnings_do_not_reach_the_user(tmp_path: Path) -> None:
    """`[[` in a regex makes Python warn about future syntax: not the user's business."""
    text = ('param v: string = "a" { pattern "[[a]" }\n'
            'step s "S" { note "{{ v matches \\"[a&&b]\\" }}" }\n')
    assert_clean(check(tmp_path, text))
