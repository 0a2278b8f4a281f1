"""`runbook view`: the runbook as a document for people, params with what they accept."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from reportruns import add


def test_view_shows_choices_and_patterns_in_markdown(ws):
    result = ws.runbook("view", add(ws, "view_params"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "| name | type | default | allowed values | description |" in lines
    assert ('| `environment` | string | "staging" | one of "staging", "production" | '
            'Where to deploy |') in lines
    assert r"| `version` | string | (required) | matching `^(v[0-9]+\|latest)$` |  |" in lines
    assert "| `replicas` | int | 2 | one of 1, 2, 3 |  |" in lines


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.rows[-1].append("")

    def handle_data(self, data) -> None:
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def test_view_as_html_keeps_a_patterns_alternation_in_its_cell(ws):
    result = ws.runbook("view", add(ws, "view_params"), "--format", "html")
    assert result.exit_code == 0, result.output
    cells = _Cells()
    cells.feed(result.stdout)
    version = next(row for row in cells.rows if row and row[0] == "`version`")
    assert version == ["`version`", "string", "(required)", "matching `^(v[0-9]+|latest)$`", ""]
    assert not re.search(r"<(script|link|img)\b", result.stdout)
