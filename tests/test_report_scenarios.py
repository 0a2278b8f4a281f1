"""What approvers and auditors read, for the golden scenarios (tests/fixtures/report/): the
plan's summary and detail (`run --dry-run`), and the report (`show`) as text, Markdown and
HTML, each a snapshot of exactly what the user sees (times, ids and hashes normalised)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import RUNBOOK, Workspace, clean_env
from reportruns import SCENARIOS, add, play, shown


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """Each scenario, played once: its workspace and run directory."""
    runs = {}
    for name in SCENARIOS:
        ws = Workspace(tmp_path_factory.mktemp(name))
        runs[name] = (ws, play(ws, name))
    return runs


def dry_run(ws: Workspace, name: str, *args: str) -> tuple[str, str]:
    """The plan of a golden runbook, split into its summary and its detail."""
    result = ws.runbook("run", add(ws, name), "--dry-run", *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    summary, detail = result.stdout.split("\n\n\nDetail", 1)
    return shown(summary, ws) + "\n", "Detail" + shown(detail, ws)


@pytest.mark.parametrize("name", SCENARIOS)
def test_plan_summary(ws, snapshot, name):
    summary, _ = dry_run(ws, name)
    assert summary.splitlines()[0].startswith(f"Plan for {name}.runbook")
    assert summary == snapshot


@pytest.mark.parametrize("name", SCENARIOS)
def test_plan_detail(ws, snapshot, name):
    _, detail = dry_run(ws, name)
    assert detail == snapshot


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_report(played, snapshot, name, fmt):
    ws, run_dir = played[name]
    result = ws.runbook("show", run_dir.name, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert shown(result.stdout, ws) == snapshot


# ---------------------------------------------------------------------- what each one shows


def report(played, name: str, fmt: str = "text") -> str:
    ws, run_dir = played[name]
    return ws.runbook("show", run_dir.name, "--format", fmt).stdout


def test_the_verdict_comes_first(played):
    for name in SCENARIOS:
        lines = report(played, name).splitlines()
        assert lines[2].startswith("Verdict: "), name
        assert "record intact" in lines[2]


def test_a_rollback_says_where_it_began_and_what_it_undid(played):
    text = report(played, "rollback").split("\nTimeline\n", 1)[1]
    began = text.index("↺ rollback began after switch failed: undoes switch, migrate, backup")
    assert text.index("✗ switch · Switch traffic: failed") < began
    assert began < text.index("↺ undo switch: rolled_back") < text.index("↺ undo backup")
    # The failed multi-line command is shown whole, with the tail of its stderr.
    assert "  | echo 'port 8081 refused the connection' >&2\n" in text
    assert "stderr: port 8081 refused the connection" in text
    assert "announce" not in text  # never started


def test_a_pause_and_an_out_of_band_approval_are_shown_in_time_order(played):
    text = report(played, "pause_resume")
    order = ["waiting for approval: needs 1 approval from alice, bob",
             "⏸ paused at approve_prod (exit 3)",
             "▶ resumed by <user>".replace("<user>", "tester"),
             "approved by alice via approve-command",
             "run echo released"]
    places = [text.index(piece) for piece in order]
    assert places == sorted(places)
    assert "identity asserted — change 42 reviewed" in text


def test_an_interruption_and_the_resume_are_marked(played):
    text = report(played, "interrupt_resume")
    assert re.search(r"■ wait_for_lb · Wait for the load balancer: interrupted\n", text)
    assert "■ interrupted during wait_for_lb (exit 130)" in text
    assert re.search(r"▶ resumed by tester on \S+: runbook resume \S+ \(after interrupted\)",
                     text)
    assert "✓ wait_for_lb · Wait for the load balancer: succeeded" in text


def test_for_instances_and_tolerated_failures_are_their_own_lines(played):
    text = report(played, "for_step")
    for host in ("web1", "web2", "web3"):
        assert f"✓ restart[{host}] · Restart {host}: succeeded" in text
        assert f'set restarted = "restarting {host}"' in text
    tolerated = report(played, "tolerated")
    assert "⚠ warm_cache · Warm the cache: failed, tolerated (on_failure continue)" in tolerated
    assert tolerated.splitlines()[2].startswith("Verdict: succeeded (exit 0)")


def test_html_folds_multi_line_commands_and_links_the_logs(played):
    page = report(played, "rollback", "html")
    assert "<details open><summary>run <code>echo switching</code> … (3 lines)" in page
    assert re.search(r"<a href='output/\d+-switch\.stderr\.log'>", page)
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)


# ---------------------------------------------------------------------- deploy, in the README


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
README = EXAMPLES.parent / "README.md"


def test_deploys_plan_summary_fits_one_screen_and_is_the_one_in_the_readme():
    result = subprocess.run([str(RUNBOOK), "run", "deploy.runbook", "--dry-run"],
                            cwd=EXAMPLES, env=clean_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.split("\n\n\nDetail", 1)[0]
    assert len(summary.splitlines()) <= 60
    # The std library's internals (fs.backup's Python) stay out of the summary and, folded,
    # out of the detail; `--expand` shows them.
    assert "tarfile" not in result.stdout
    assert "task fs.backup(path: .work/deploy/shared, archive: " in result.stdout
    assert "http://127.0.0.1:<old_port>/health" in result.stdout
    tour = README.read_text(encoding="utf-8")
    shown = re.sub(r"(?m)^Operator: .*$", "Operator: alice@build-7", summary)
    assert shown in tour
    expanded = subprocess.run([str(RUNBOOK), "run", "deploy.runbook", "--dry-run", "--expand"],
                              cwd=EXAMPLES, env=clean_env(), capture_output=True, text=True,
                              timeout=120)
    assert "import shutil, sys" in expanded.stdout and "tarfile" in expanded.stdout
