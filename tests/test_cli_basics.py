"""The `runbook` command itself: version, help, exit codes, paths, several files at once."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from frontend import FIXTURES, runbook, user_env

from runbook_lang import __version__

CLEAN = FIXTURES / "valid" / "run_into.runbook"
WARNING = FIXTURES / "warnings" / "W303_unused_let.runbook"
ERROR = FIXTURES / "invalid" / "E200_undefined_name.runbook"


def test_version(tmp_path: Path) -> None:
    result = runbook("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == \
        (0, f"runbook {__version__}\n", "")


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = runbook("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: runbook")
    assert "check     parse and statically check runbook files" in result.stdout
    assert "exit codes: 0 succeeded, 1 failed, 2 usage/parse/static error" in result.stdout


def test_help_lists_every_command_and_each_command_parses_alone(tmp_path: Path) -> None:
    """A command line that names a command builds only that command's parser: the list of
    names it is picked from must be the whole list `--help` shows."""
    import re

    from runbook_lang.cli import COMMANDS

    shown = runbook("--help", cwd=tmp_path).stdout
    listed = re.findall(r"^    ([a-z]+) {2,}", shown, re.MULTILINE)
    assert listed == list(COMMANDS)
    for command in COMMANDS:
        result = runbook(command, "--help", cwd=tmp_path)
        assert (result.returncode, result.stdout.split()[:2]) == (0, ["usage:", "runbook"])
        assert f"usage: runbook {command}" in result.stdout


def test_help_wraps_at_the_width_columns_says_at_every_call(tmp_path: Path) -> None:
    """As argparse does: $COLUMNS (less 2), else the terminal, else 80 (a pipe here)."""
    widths = {}
    for columns in ("40", "120", ""):
        env = user_env(COLUMNS=columns)
        if not columns:
            del env["COLUMNS"]
        shown = runbook("run", "--help", cwd=tmp_path, env=env).stdout
        widths[columns] = max(len(line) for line in shown.splitlines())
    assert widths["40"] < 60 < widths[""] <= 78 < widths["120"] <= 118


def test_check_help(tmp_path: Path) -> None:
    result = runbook("check", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "usage: runbook check" in result.stdout
    assert "--ast" in result.stdout and "--output {text,json}" in result.stdout


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run([sys.executable, "-m", "runbook_lang", "--version"], cwd=tmp_path,
                            env=user_env(), capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, f"runbook {__version__}\n")


def test_exit_code_0_when_clean(tmp_path: Path) -> None:
    result = runbook("check", CLEAN, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{CLEAN}: ok\n", "")


def test_exit_code_0_with_warnings_only(tmp_path: Path) -> None:
    result = runbook("check", WARNING, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"{WARNING}: ok (1 warning)\n"
    assert result.stderr.startswith("warning[W303]: let `unused_dir` is never used\n")


def test_exit_code_2_with_an_error(tmp_path: Path) -> None:
    result = runbook("check", ERROR, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == f"{ERROR}: failed (1 error)\n"
    assert result.stderr.startswith("error[E200]: undefined name `relese`\n")


def test_exit_code_2_on_a_usage_error(tmp_path: Path) -> None:
    result = runbook("check", "--output", "yaml", CLEAN, cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'yaml'" in result.stderr


def test_check_leaves_the_garbage_collector_as_it_was(tmp_path: Path) -> None:
    """`check` parses without the cyclic collector and keeps the tree out of its sight while
    it analyses; afterwards, in this process as in any caller's, the collector is back."""
    import gc

    missing = tmp_path / "missing.runbook"
    for files in ([CLEAN, WARNING], [ERROR], [missing]):
        before = (gc.isenabled(), gc.get_freeze_count())
        result = runbook("check", *map(str, files), cwd=tmp_path)
        assert result.returncode == (0 if files[0] == CLEAN else 2)
        assert (gc.isenabled(), gc.get_freeze_count()) == before


def test_several_files_at_once(tmp_path: Path) -> None:
    """Every file is checked and summed up; one failure makes the exit code 2."""
    for path in (CLEAN, WARNING, ERROR):
        shutil.copy(path, tmp_path / path.name)
    names = [CLEAN.name, WARNING.name, ERROR.name, "missing.runbook"]
    result = runbook("check", *names, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{CLEAN.name}: ok", f"{WARNING.name}: ok (1 warning)",
        f"{ERROR.name}: failed (1 error)", "missing.runbook: failed (1 error)"]
    assert [line.split(":")[0] for line in result.stderr.splitlines()
            if line.startswith(("error", "warning"))] == \
        ["warning[W303]", "error[E200]", "error[E001]"]
    clean_only = runbook("check", CLEAN.name, WARNING.name, cwd=tmp_path)
    assert clean_only.returncode == 0


def test_check_from_another_directory(tmp_path: Path) -> None:
    """Imports resolve against the importing file, not the working directory; the paths
    shown are the ones the user typed."""
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "valid", project)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    relative = Path("..") / ".." / "project" / "import_local_module.runbook"
    result = runbook("check", relative, cwd=elsewhere)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{relative}: ok\n", "")
    absolute = project / "import_local_module.runbook"
    result = runbook("check", absolute, cwd=elsewhere)
    assert (result.returncode, result.stdout) == (0, f"{absolute}: ok\n")


def test_diagnostics_in_a_module_name_its_file(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "invalid", tmp_path / "invalid")
    result = runbook("check", "invalid/E100_in_imported_module.runbook", cwd=tmp_path)
    assert result.returncode == 2
    assert " --> invalid/modules/broken.runbook:2:15\n" in result.stderr


def test_colour_is_off_without_a_terminal(tmp_path: Path) -> None:
    env = user_env()
    env.pop("NO_COLOR")
    result = runbook("check", ERROR, cwd=tmp_path, env=env)
    assert "\x1b[" not in result.stderr
