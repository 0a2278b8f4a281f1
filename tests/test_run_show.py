"""`runbook show` (LANGUAGE.md §8): the audit report of a run, as text, Markdown, JSON and a
self-contained HTML page, built from the transcript alone."""

import json
import re

import pytest
from conftest import Workspace, normalise_measured


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """One run with something in every part of the report."""
    ws = Workspace(tmp_path_factory.mktemp("report"))
    result = ws.run("show_report", "--approve", "approve=alice", "--yes")
    assert result.exit_code == 1, result.output
    return ws, result.run_dirs()[0]


def show(ws, run_dir, fmt: str) -> str:
    result = ws.runbook("show", run_dir.name, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_report_as_text(report_run, snapshot, fmt):
    ws, run_dir = report_run
    assert normalise_measured(show(ws, run_dir, fmt), ws.root) == snapshot


def test_report_as_json(report_run, snapshot):
    ws, run_dir = report_run
    report = json.loads(normalise_measured(show(ws, run_dir, "json"), ws.root))
    assert report["run_id"] == "<run-id>"
    assert report == snapshot


def test_report_as_html_is_one_self_contained_page(report_run):
    ws, run_dir = report_run
    page = show(ws, run_dir, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "http" not in page
    assert "//" not in page
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert "<style>" in page
    assert "<h1>Run report: Release report</h1>" in page
    assert "echo releasing; echo &#x27;disk full&#x27; &gt;&amp;2; exit 3" in page


def test_show_finds_a_run_by_id_directory_or_file(report_run):
    ws, run_dir = report_run
    by_id = show(ws, run_dir, "text")
    for ref in (str(run_dir), str(run_dir / "transcript.jsonl")):
        assert ws.runbook("show", ref).stdout == by_id
    missing = ws.runbook("show", "20000101T000000Z-000000")
    assert missing.exit_code == 2
    assert "no transcript at '20000101T000000Z-000000'" in missing.stderr
