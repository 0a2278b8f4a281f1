"""The HTML report in a real browser: the system's Chromium, headless, loads the page
`runbook show --format html` wrote, with every network request refused. The page must load
without a console error, and its text must hold the step titles, the approver and the
verdict. Without Chromium the test skips, except in CI (`CI=true`), where it fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import Workspace
from reportruns import play

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is not installed (apt-get install chromium): CI runs the "
                        "browser test")
        pytest.skip("Chromium is not installed")
    return CHROMIUM


def load(browser: str, page: Path, tmp: Path) -> tuple[str, list[str], Path]:
    """Load `page` headless: its DOM after load, the console messages, and a screenshot."""
    shot = tmp / "page.png"
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-extensions", f"--user-data-dir={tmp / 'profile'}",
              # Nothing leaves the machine: every host name fails to resolve.
              "--host-resolver-rules=MAP * ~NOTFOUND",
              "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shots = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,2400",
                            page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shots.returncode == 0, shots.stderr[-2000:]
    console = [line for line in (dom.stderr + shots.stderr).splitlines()
               if ":CONSOLE" in line or "Uncaught" in line
               or "Failed to load resource" in line]
    return dom.stdout, console, shot


class _Text(HTMLParser):
    """The text a reader sees (what `innerText` would hold, near enough)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        self._skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag) -> None:
        self._skip -= tag in ("style", "script", "title")

    def handle_data(self, data) -> None:
        if not self._skip:
            self.parts.append(data)


def page_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def test_the_report_loads_in_chromium_with_titles_approver_and_verdict(browser, tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    run_dir = play(ws, "pause_resume")
    html = ws.runbook("show", run_dir.name, "--format", "html")
    assert html.exit_code == 0, html.output
    # Saved in the run directory, the page's links reach the output logs.
    page = run_dir / "report.html"
    page.write_text(html.stdout, encoding="utf-8")

    dom, console, shot = load(browser, page, tmp_path)
    assert console == []
    text = page_text(dom)
    for title in ("Prepare the release", "Approve the production release",
                  "Release to production"):
        assert title in text
    assert "approved by alice via approve-command" in text
    assert "Verdict: succeeded (exit 0) · record intact" in text
    assert shot.stat().st_size > 10_000  # a rendered page, not an empty canvas
    for link in re.findall(r"href='([^']+)'", html.stdout):
        assert (run_dir / link).is_file(), link


def test_the_harness_sees_console_errors(browser, tmp_path):
    """The check above can fail: a page with a script error is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><title>x</title><p>x</p><script>nosuch()</script>",
                    encoding="utf-8")
    _, console, _ = load(browser, page, tmp_path)
    assert any("nosuch is not defined" in line for line in console)
