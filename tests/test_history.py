"""History across working directories: `runbook history` lists the runs of every runbook
under the current repository, wherever each was started; `runbook resume FILE` continues
that runbook's newest unfinished run, and a bare `runbook resume` refuses to guess between
runbooks."""

from __future__ import annotations

import json
import shutil

from conftest import Workspace, read_transcript
from reportruns import REPORT_FIXTURES


def repository(ws: Workspace) -> None:
    """A repository with the same paused runbook in two folders, `a/` and `b/`."""
    (ws.root / ".git").mkdir()
    for folder, name in (("a", "release.runbook"), ("b", "other.runbook")):
        (ws.root / folder).mkdir()
        shutil.copy(REPORT_FIXTURES / "pause_resume.runbook", ws.root / folder / name)


def run_in(ws: Workspace, folder: str, *args: str):
    return Workspace(ws.root / folder).runbook(*args)


def run_ids(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines()[1:]]


def test_history_finds_the_runs_of_the_repository_s_runbooks(ws):
    repository(ws)
    empty = ws.runbook("history")
    assert empty.exit_code == 0
    assert empty.stdout == f"no recorded runs (looked under {ws.root.resolve()}: no " \
        ".runbook/runs folder)\n"
    assert run_in(ws, "a", "run", "release.runbook").exit_code == 3
    assert run_in(ws, "b", "run", "other.runbook").exit_code == 3
    from_root = ws.runbook("history")
    lines = from_root.stdout.splitlines()
    assert lines[0].split() == ["RUN", "ID", "RUNBOOK", "STATUS", "OPERATOR", "STARTED",
                                "DURATION"]
    assert [line.split()[1:3] for line in lines[1:]] == [["b/other.runbook", "paused"],
                                                          ["a/release.runbook", "paused"]]
    from_b = run_in(ws, "b", "history")
    assert [line.split()[1] for line in from_b.stdout.splitlines()[1:]] == \
        ["other.runbook", "../a/release.runbook"]
    assert run_ids(from_b.stdout) == run_ids(from_root.stdout)


def test_a_bare_resume_refuses_to_guess_between_runbooks(ws):
    repository(ws)
    (ws.root / "b" / "release.runbook").write_bytes((ws.root / "a" / "release.runbook")
                                                    .read_bytes())
    assert run_in(ws, "b", "run", "other.runbook").exit_code == 3
    assert run_in(ws, "b", "run", "release.runbook").exit_code == 3
    refused = run_in(ws, "b", "resume")
    assert refused.exit_code == 2
    assert "unfinished runs of 2 runbooks (under " in refused.stderr
    assert "other.runbook" in refused.stderr and "release.runbook" in refused.stderr
    assert "say which one: runbook resume FILE (its newest unfinished run) or RUN_ID" in \
        refused.stderr


def test_resume_file_continues_that_runbook_s_newest_unfinished_run(ws):
    repository(ws)
    assert run_in(ws, "a", "run", "release.runbook").exit_code == 3
    assert run_in(ws, "a", "run", "release.runbook").exit_code == 3
    assert run_in(ws, "b", "run", "other.runbook").exit_code == 3
    _, newest_of_a, older_of_a = run_ids(ws.runbook("history").stdout)
    resumed = run_in(ws, "b", "resume", "../a/release.runbook", "--approve",
                     "approve_prod=alice")
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming run {newest_of_a} (paused)" in resumed.stdout
    statuses = {line.split()[0]: line.split()[2]
                for line in ws.runbook("history").stdout.splitlines()[1:]}
    assert statuses[newest_of_a] == "succeeded"
    assert list(statuses.values()).count("paused") == 2  # the older run of a, and b's
    then_the_older = run_in(ws, "b", "resume", "../a/release.runbook")
    assert then_the_older.exit_code == 3  # no approval given: it waits again
    assert f"resuming run {older_of_a} (paused)" in then_the_older.stdout
    shutil.copy(ws.root / "b" / "other.runbook", ws.root / "b" / "never_run.runbook")
    none = run_in(ws, "b", "resume", "never_run.runbook")
    assert none.exit_code == 2
    assert "no unfinished run of never_run.runbook to resume (looked under" in none.stderr


def test_history_as_json_lists_what_the_table_lists(ws):
    repository(ws)
    assert run_in(ws, "a", "run", "release.runbook").exit_code == 3
    listed = ws.runbook("history", "--output", "json")
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)
    assert [(r["runbook"], r["status"]) for r in runs] == [("a/release.runbook", "paused")]
    assert set(runs[0]) == {"run_id", "runbook", "status", "started", "operator",
                            "duration_ms"}
    assert runs[0]["run_id"] == run_ids(ws.runbook("history").stdout)[0]


def test_a_run_id_history_lists_works_from_where_history_was_asked(ws):
    repository(ws)
    assert run_in(ws, "a", "run", "release.runbook").exit_code == 3
    (run_id,) = run_ids(ws.runbook("history").stdout)
    assert ws.runbook("verify", run_id).exit_code == 0
    shown = ws.runbook("show", run_id)
    assert shown.exit_code == 0 and run_id in shown.stdout
    assert "Paused at " in shown.stdout and "Failed step" not in shown.stdout
    gate = next(r["gate"] for r in read_transcript(ws.root / "a" / ".runbook" / "runs" / run_id)
                if r["event"] == "gate_waiting")
    for who in ("alice", "bob"):
        assert ws.runbook("approve", run_id, gate, "--as", who).exit_code == 0
    resumed = ws.runbook("resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert not (ws.root / ".runbook").exists()  # nothing recorded where it was asked from
