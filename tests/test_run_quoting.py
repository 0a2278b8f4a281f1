"""Quoting by shell context in real runs (LANGUAGE.md §6.1): the commands that ran a value
as code when quoting knew only `'` and `"`, run for real through `runbook run`.

Each hostile value plants `touch canary`; the file must never appear. Where no quoting is
safe, `runbook run` stops before anything runs (exit 2, E280).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import events, finished, read_transcript, run_dirs

PLANTED = "x;touch canary;y"


def write(ws, text: str, name: str = "t.runbook") -> str:
    (ws.root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def run(ws, text: str, *args: str):
    return ws.runbook("run", write(ws, text), *args)


def no_canary(ws) -> bool:
    return not (ws.root / "canary").exists()


def test_a_value_in_dollar_paren_inside_double_quotes_stays_one_word(ws):
    result = run(ws, r"""
        param path: string
        step s "S" {
          run "printf '%s' \"$(dirname {{path}})\" > out.txt"
        }
    """, "--param", f"path={PLANTED}/file")
    assert result.exit_code == 0, result.output
    assert (ws.root / "out.txt").read_text() == PLANTED
    assert no_canary(ws)


def test_a_value_in_backquotes_inside_double_quotes_stays_one_word(ws):
    result = run(ws, r"""
        param x: string
        step s "S" {
          run "printf '%s' \"`printf '%s' {{x}}`\" > out.txt"
        }
    """, "--param", "x=a`touch canary`;touch canary\\")
    assert result.exit_code == 0, result.output
    assert (ws.root / "out.txt").read_text() == "a`touch canary`;touch canary\\"
    assert no_canary(ws)


def test_an_apostrophe_in_a_comment_does_not_change_the_quoting_after_it(ws):
    value = "'; touch canary; '"
    result = run(ws, """
        param x: string
        step s "S" {
          run \"\"\"
            # don't forget: the value is one word
            printf '%s' {{x}} > out.txt
            printf '%s' "{{x}}" >> out.txt
          \"\"\"
        }
    """, "--param", f"x={value}")
    assert result.exit_code == 0, result.output
    assert (ws.root / "out.txt").read_text() == value * 2
    assert no_canary(ws)


def test_a_value_in_a_here_document_is_refused_before_anything_runs(ws):
    result = run(ws, """
        param x: string = "ok"
        step first "First" { run "touch started" }
        step s "S" {
          run \"\"\"
            cat > out.txt <<EOF
            {{x}}
            EOF
          \"\"\"
        }
    """, "--param", "x=a\nEOF\ntouch canary")
    assert result.exit_code == 2, result.output
    assert "error[E280]: no quoting is safe for `{{ x }}` in a here-document" in result.stderr
    assert "env { X = x }" in result.stderr
    assert not (ws.root / "started").exists() and no_canary(ws)
    assert run_dirs(ws.root / ".runbook" / "runs") == []


def test_a_value_in_a_comment_is_refused_before_anything_runs(ws):
    result = run(ws, """
        param x: string = "ok"
        step s "S" { run "echo start # {{x}}" }
    """, "--param", "x=a\ntouch canary")
    assert result.exit_code == 2, result.output
    assert "t.runbook:3:32" in result.stderr
    assert "no quoting is safe for `{{ x }}` in a comment" in result.stderr
    assert no_canary(ws)
    assert run_dirs(ws.root / ".runbook" / "runs") == []


def test_the_env_fix_that_e280_suggests_works(ws):
    value = "a\nEOF\ntouch canary\n$(touch canary)"
    result = run(ws, """
        param x: string
        step s "S" {
          env { X = x }
          run \"\"\"
            cat > out.txt <<EOF
            $X
            EOF
          \"\"\"
        }
    """, "--param", f"x={value}")
    assert result.exit_code == 0, result.output
    assert (ws.root / "out.txt").read_text() == value + "\n"
    assert no_canary(ws)


def test_a_check_probe_is_quoted_for_its_context(ws):
    result = run(ws, r"""
        param x: string
        check c "The value comes back" {
          run "printf '%s' \"$(printf '%s' {{x}})\""
          expect stdout == x
        }
    """, "--param", f"x={PLANTED}")
    assert result.exit_code == 0, result.output
    assert no_canary(ws)


def test_a_nul_byte_fails_the_step(ws):
    (ws.root / "params.yaml").write_text('x: "a\\0b"\n', encoding="utf-8")
    result = run(ws, """
        param x: string
        step s "S" { run "printf '%s' {{x}} > out.txt" }
    """, "--params", "params.yaml")
    assert result.exit_code == 1, result.output
    assert "NUL byte" in result.output
    assert "Traceback" not in result.output
    assert not (ws.root / "out.txt").exists()


def test_raw_text_that_puts_a_later_value_in_eval_fails_the_step(ws):
    result = run(ws, """
        param tool: string = "eval"
        param x: string = "touch canary"
        step s "S" { run "{{ raw(tool) }} {{x}}" }
    """)
    assert result.exit_code == 1, result.output
    assert "raw()" in result.output and "`eval`" in result.output
    assert no_canary(ws)
    records = read_transcript(run_dirs(ws.root / ".runbook" / "runs")[0])
    assert events(records, "command_started") == []
    assert finished(records)["status"] == "failed"


def test_std_maintenance_enable_takes_any_flag_path(ws):
    flag = f"{PLANTED}/maint.flag"
    result = run(ws, """
        import "std/maintenance" as maint
        param flag: string
        step on "Maintenance on" { maint.enable(flag: flag, reason: "it's $(touch canary)") }
    """, "--param", f"flag={flag}")
    assert result.exit_code == 0, result.output
    lines = Path(ws.root / flag).read_text().splitlines()
    assert lines[0] == "it's $(touch canary)"
    assert no_canary(ws)
