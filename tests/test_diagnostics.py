"""What `runbook check` tells a user about a broken runbook: code, place, culprit, exit code.

One fixture per error or warning case under `tests/fixtures/{invalid,warnings}/`; each states
the diagnostics it must produce in its `# expect:` lines (see `frontend.py`). The text the
user sees is a snapshot per fixture: the command (in-process, see harness.py), in a temporary
directory, without colour.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from frontend import FIXTURES, INVALID, WARNINGS, Expected, copy_folder, expectations, ids, runbook

from runbook_lang.analysis.analyzer import analyse
from runbook_lang.syntax.loader import Loader, LoadError

ROOT = Path(__file__).resolve().parent.parent
# The front end's modules: every code raised there must have a fixture.
FRONT_END = ["syntax/*.py", "analysis/*.py", "commands/check.py"]


def found_diagnostics(path: Path) -> list:
    """Diagnostics of a fixture, in-process; an unreadable file gives its E001."""
    try:
        module = Loader().load(path, path.name)
    except LoadError as error:
        return [("E001", None, str(error))]
    return [(d.code, d.location, d.message) for d in analyse(module)]


def place(path: Path, location) -> str:
    """`LINE:COLUMN` in the fixture itself, else `PATH:LINE:COLUMN` relative to its folder."""
    if location is None:
        return "-"
    where = f"{location.line}:{location.column}"
    shown = Path(location.path)
    if shown.name == path.name and shown.parent in (Path("."), path.parent):
        return where
    absolute = shown if shown.is_absolute() else Path.cwd() / shown
    return f"{os.path.relpath(absolute, path.parent)}:{where}"


@pytest.fixture(scope="session")
def cli_runs(tmp_path_factory) -> dict:
    """`runbook check FIXTURE` for every invalid and warning fixture, each run on its own,
    from a copy of its folder."""
    root = tmp_path_factory.mktemp("check")
    results = {}
    for kind, paths in (("invalid", INVALID), ("warnings", WARNINGS)):
        folder = copy_folder(kind, root)
        for path in paths:
            results[path.name] = runbook("check", path.name, cwd=folder)
    return results


def transcript(name: str, result) -> str:
    """The run as a user sees it: the command, stderr, stdout and the exit code."""
    return (f"$ runbook check {name}\n{result.stderr}"
            f"--- stdout ---\n{result.stdout}--- exit code {result.returncode} ---\n")


def assert_matches_expectations(path: Path, expected: list[Expected]) -> None:
    found = found_diagnostics(path)
    assert [(code, place(path, loc)) for code, loc, _ in found] == \
        [(e.code, e.where()) for e in expected]
    for (_, _, message), wanted in zip(found, expected, strict=True):
        assert wanted.culprit in message


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("path", INVALID, ids=ids(INVALID))
def test_invalid_fixture_reports_exactly_what_it_expects(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no `# expect:` line"
    assert all(e.code.startswith("E") for e in expected)
    assert path.stem.split("_")[0] == expected[0].code or \
        path.stem.split("_")[0] in {e.code for e in expected}
    assert_matches_expectations(path, expected)


@pytest.mark.parametrize("path", INVALID, ids=ids(INVALID))
def test_invalid_fixture_as_the_user_sees_it(path: Path, cli_runs, snapshot) -> None:
    result = cli_runs[path.name]
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for wanted in expectations(path):
        assert wanted.culprit in result.stderr
        if wanted.line is not None:
            shown = f"{wanted.path or path.name}:{wanted.line}:{wanted.column}"
            assert f" --> {shown}\n" in result.stderr
    assert transcript(path.name, result) == snapshot


# ---------------------------------------------------------------------- warnings


@pytest.mark.parametrize("path", WARNINGS, ids=ids(WARNINGS))
def test_warning_fixture_reports_exactly_what_it_expects(path: Path) -> None:
    expected = expectations(path)
    assert expected and all(e.code.startswith("W") for e in expected)
    assert_matches_expectations(path, expected)


@pytest.mark.parametrize("path", WARNINGS, ids=ids(WARNINGS))
def test_warning_fixture_as_the_user_sees_it(path: Path, cli_runs, snapshot) -> None:
    result = cli_runs[path.name]
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    count = len(expectations(path))
    assert result.stdout == f"{path.name}: ok ({count} warning{'s' if count > 1 else ''})\n"
    assert transcript(path.name, result) == snapshot


# ---------------------------------------------------------------------- coverage


def codes_raised_in_front_end() -> set[str]:
    codes: set[str] = set()
    for pattern in FRONT_END:
        for path in (ROOT / "runbook_lang").glob(pattern):
            codes |= set(re.findall(r'"([EW]\d{3})"', path.read_text(encoding="utf-8")))
    return codes


def test_every_code_has_a_fixture() -> None:
    covered = {e.code for path in INVALID + WARNINGS for e in expectations(path)}
    assert codes_raised_in_front_end() - covered == set()


def test_every_code_is_documented() -> None:
    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^## ([EW]\d{3})\b", text, re.MULTILINE))
    inventory = {code for path in (ROOT / "runbook_lang" / "targets").glob("*.py")
                 for code in re.findall(r'"(E3\d\d)"', path.read_text(encoding="utf-8"))}
    assert documented == codes_raised_in_front_end() | inventory


# ---------------------------------------------------------------------- JSON output


def test_json_output_of_a_whole_folder(tmp_path: Path) -> None:
    """`--output json`: one document on stdout, per file its diagnostics, nothing else."""
    folder = copy_folder("invalid", tmp_path)
    names = [p.name for p in INVALID]
    result = runbook("check", "--output", "json", *names, cwd=folder)
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "errors", "warnings", "files"}
    assert report["ok"] is False
    assert [f["path"] for f in report["files"]] == names
    errors = warnings = 0
    for path, entry in zip(INVALID, report["files"], strict=True):
        assert set(entry) == {"path", "ok", "diagnostics"}
        assert entry["ok"] is False
        for diagnostic in entry["diagnostics"]:
            assert set(diagnostic) == {"severity", "code", "message", "location", "hints"}
            assert diagnostic["severity"] in ("error", "warning")
            assert isinstance(diagnostic["hints"], list)
            location = diagnostic["location"]
            if location is not None:
                assert set(location) == {"path", "line", "column", "end_line", "end_column"}
                assert (location["end_line"], location["end_column"]) > \
                    (location["line"], location["column"])
            errors += diagnostic["severity"] == "error"
            warnings += diagnostic["severity"] == "warning"
        expected = expectations(path)
        assert [(d["code"], d["location"] and f"{d['location']['line']}:"
                 f"{d['location']['column']}") for d in entry["diagnostics"]] == \
            [(e.code, e.line and f"{e.line}:{e.column}") for e in expected]
    assert (report["errors"], report["warnings"]) == (errors, warnings)


def test_json_output_snapshot(tmp_path: Path, snapshot) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    for kind, name in (("invalid", "E200_undefined_name"), ("warnings", "W303_unused_let"),
                       ("valid", "run_into")):
        (folder / f"{name}.runbook").write_bytes(
            (FIXTURES / kind / f"{name}.runbook").read_bytes())
    result = runbook("check", "--output", "json", "E200_undefined_name.runbook",
                     "W303_unused_let.runbook", "run_into.runbook", "missing.runbook",
                     cwd=folder)
    assert result.returncode == 2
    assert result.stdout == snapshot


def test_json_output_is_ok_with_warnings_only(tmp_path: Path) -> None:
    folder = copy_folder("warnings", tmp_path)
    result = runbook("check", "--output", "json", *(p.name for p in WARNINGS), cwd=folder)
    report = json.loads(result.stdout)
    assert (result.returncode, report["ok"], report["errors"]) == (0, True, 0)
    assert report["warnings"] == sum(len(expectations(p)) for p in WARNINGS)


def test_no_colour_when_not_a_terminal(cli_runs) -> None:
    for name, result in cli_runs.items():
        assert "\x1b[" not in result.stderr + result.stdout, name


# ---------------------------------------------------------------------- the documentation

DIAGNOSTICS_DOC = ROOT / "docs" / "diagnostics.md"


def documented_examples() -> dict[str, str]:
    """Code -> the runbook example of its section in docs/diagnostics.md."""
    text = DIAGNOSTICS_DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## (?=[EW]\d{3}\b)", text, flags=re.MULTILINE)[1:]
    examples = {}
    for section in sections:
        block = re.search(r"^```runbook\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
        if block:
            examples[section[:4]] = block.group(1)
    return examples


def test_every_code_but_five_has_an_example() -> None:
    # E001 is about the file itself; W305, W307, W309 and E206 need a second file: they are
    # described in words.
    assert set(documented_examples()) == \
        codes_raised_in_front_end() - {"E001", "W305", "W307", "W309", "E206"}


@pytest.mark.parametrize(("code", "text"), sorted(documented_examples().items()))
def test_documented_example_produces_its_code(tmp_path: Path, code: str, text: str) -> None:
    path = tmp_path / "example.runbook"
    path.write_text(text, encoding="utf-8")
    assert code in [found for found, _, _ in found_diagnostics(path)]
