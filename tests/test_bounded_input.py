"""Hostile input ends in a clear error, with the tool's memory and time bounded (§6.7).

Each case runs the real `runbook` command with its address space limited to 512 MiB: an
input that made the tool grow without bound would end in a MemoryError or a kill, not in
the message asserted here. Time bounds are generous (a loaded machine), far below the
minutes the unbounded cases took.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import pytest
from frontend import runbook_command, user_env

LIMIT = 512 * 1024 * 1024
SECONDS = 30


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def bounded(*args: str | Path, cwd: Path, env: dict | None = None):
    """`runbook ARGS` under RLIMIT_AS (text output)."""
    return subprocess.run([*runbook_command(), *map(str, args)], cwd=cwd,
                          env=user_env(**(env or {})), capture_output=True, text=True,
                          errors="replace", timeout=SECONDS, preexec_fn=limited,
                          stdin=subprocess.DEVNULL)


def refused(result, *phrases: str) -> None:
    """Exit code 2, the phrases in the message, no traceback, no internal error."""
    out = result.stderr + result.stdout
    assert result.returncode == 2, out[-2000:]
    assert "Traceback" not in out and "internal error" not in out and "MemoryError" not in out
    for phrase in phrases:
        assert phrase in out, out[-2000:]


def test_an_endless_runbook_file(tmp_path: Path) -> None:
    refused(bounded("check", "/dev/zero", cwd=tmp_path), "/dev/zero", "4 MiB")


def test_a_runbook_over_the_limit(tmp_path: Path) -> None:
    (tmp_path / "big.runbook").write_bytes(b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    refused(bounded("check", "big.runbook", cwd=tmp_path), "big.runbook", "4 MiB")


def test_an_imported_module_over_the_limit(tmp_path: Path) -> None:
    (tmp_path / "mod.runbook").write_bytes(b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    (tmp_path / "main.runbook").write_text('import "./mod.runbook" as m\n', encoding="utf-8")
    refused(bounded("check", "main.runbook", cwd=tmp_path), "mod.runbook", "4 MiB")


def test_a_ten_megabyte_string_literal_in_a_module(tmp_path: Path) -> None:
    """The file limit stops it first; within the file limit, the literal limit (E105)."""
    (tmp_path / "big.runbook").write_text('let s = "' + "a" * 3_000_000 + '"\n',
                                          encoding="utf-8")
    refused(bounded("check", "big.runbook", cwd=tmp_path), "error[E105]",
            "string literal too long")


@pytest.mark.parametrize("digits", [30, 4_301, 100_000])
def test_a_number_of_many_digits(tmp_path: Path, digits: int) -> None:
    (tmp_path / "n.runbook").write_text(f"let n = {'9' * digits}\n", encoding="utf-8")
    refused(bounded("check", "n.runbook", cwd=tmp_path), "error[E105]", "number too large")


BOMB = """a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_in_params(tmp_path: Path) -> None:
    (tmp_path / "p.runbook").write_text('param a: string = "x"\nstep s "S" { note "{{a}}" }\n',
                                        encoding="utf-8")
    (tmp_path / "bomb.yaml").write_text(BOMB, encoding="utf-8")
    result = bounded("run", "p.runbook", "--params", "bomb.yaml", "--dry-run", cwd=tmp_path)
    refused(result, "bomb.yaml")


def test_an_endless_params_file(tmp_path: Path) -> None:
    (tmp_path / "p.runbook").write_text('param a: string = "x"\nstep s "S" { note "{{a}}" }\n',
                                        encoding="utf-8")
    result = bounded("run", "p.runbook", "--params", "/dev/zero", "--dry-run", cwd=tmp_path)
    refused(result, "/dev/zero", "1 MiB")


def test_an_endless_secret_file(tmp_path: Path) -> None:
    (tmp_path / "s.runbook").write_text(
        'secret tok from file "/dev/zero"\nstep s "S" { run "true" env { T = tok } }\n',
        encoding="utf-8")
    result = bounded("run", "s.runbook", cwd=tmp_path)
    refused(result, "secret `tok`", "64 KiB")


def test_a_catastrophic_pattern_is_answered_at_once(tmp_path: Path) -> None:
    (tmp_path / "r.runbook").write_text(
        'param name: string = "' + "a" * 40 + '!" { pattern "^(a+)+$" }\n'
        'let hit = "' + "a" * 40 + '!" matches "^(a+)+$"\n'
        'step s "S" { note "{{name}} {{hit}}" }\n', encoding="utf-8")
    result = bounded("check", "r.runbook", cwd=tmp_path)
    refused(result, "error[E232]", "does not match")


def test_a_catastrophic_pattern_at_run_time(tmp_path: Path) -> None:
    (tmp_path / "r.runbook").write_text(
        'param name: string = "aaa" { pattern "^(a+)+$" }\n'
        'step s "S" { note "{{name}}" }\n', encoding="utf-8")
    result = bounded("run", "r.runbook", "--param", "name=" + "a" * 5000 + "!", "--dry-run",
                     cwd=tmp_path)
    refused(result, "does not match the pattern")


@pytest.mark.parametrize(("pattern", "what"), [
    ("^(a)\\\\1$", "backreferences"), ("^(?=a)", "lookaround"), ("^(?<!b)a", "lookaround")])
def test_a_construct_re2_refuses_is_named(tmp_path: Path, pattern: str, what: str) -> None:
    (tmp_path / "r.runbook").write_text(
        f'param name: string = "a" {{ pattern "{pattern}" }}\n'
        'step s "S" { note "{{name}}" }\n', encoding="utf-8")
    refused(bounded("check", "r.runbook", cwd=tmp_path), "error[E232]", what, "RE2")
