"""Failure policies and the saga rollback (LANGUAGE.md §7), and --fail-at drills whose
dry-run shows exactly the rollback a real run performs."""

import json
import re

import pytest
from conftest import events, finished, step_order


def trail(ws) -> list[str]:
    return (ws.root / "trail.txt").read_text().split()


def rollback_lines(stdout: str) -> list[str]:
    """The rollback's lines of the live output, durations left out."""
    return [re.sub(r" \(\d+\.\d+s\)", "", line) for line in stdout.splitlines()
            if line.startswith(("↺", "▶ [undo]"))]


def test_abort_stops_and_undoes_nothing(ws):
    result = ws.run("policy_abort")
    assert result.exit_code == 1
    assert trail(ws) == ["first", "breaks"]
    records = result.records()
    assert step_order(records) == ["first", "breaks"]
    assert not events(records, "rollback_started")
    assert (finished(records)["status"], finished(records)["failed_step"]) == ("failed", "breaks")


def test_continue_tolerates_the_failure_and_the_run_succeeds(ws):
    result = ws.run("policy_continue")
    assert result.exit_code == 0
    assert trail(ws) == ["first", "breaks", "later"]
    records = result.records()
    statuses = {r["step"]: r["status"] for r in events(records, "step_finished")}
    assert statuses == {"first": "succeeded", "breaks": "failed", "later": "succeeded"}
    assert events(records, "step_finished", step="breaks")[0]["tolerated"] is True
    assert "tolerated" not in events(records, "step_finished", step="first")[0]
    assert (finished(records)["status"], finished(records)["failed_step"]) == ("succeeded", None)
    assert "⚠ breaks tolerated" in result.stdout
    assert re.search(r"breaks\s+tolerated", result.stdout)
    assert "run succeeded (exit 0)" in result.stdout


def test_a_tolerated_failure_is_not_undone_by_a_later_rollback(ws):
    result = ws.run("policy_continue_rollback")
    assert result.exit_code == 1
    records = result.records()
    assert events(records, "rollback_started")[0]["steps"] == ["last", "first"]
    assert step_order(records, "rollback") == ["last", "first"]
    assert trail(ws) == ["first", "breaks", "last", "undo-last", "undo-first"]


def test_rollback_undoes_the_failed_step_then_completed_steps_in_reverse(ws):
    result = ws.run("policy_rollback")
    assert result.exit_code == 1
    assert trail(ws) == ["one", "two", "no_undo", "three", "four",
                         "undo-four", "undo-three", "undo-two", "undo-one"]
    records = result.records()
    started = events(records, "rollback_started")[0]
    assert (started["trigger"], started["steps"]) == ("four", ["four", "three", "two", "one"])
    assert step_order(records, "rollback") == ["four", "three", "two", "one"]
    assert events(records, "rollback_finished")[0]["status"] == "succeeded"
    assert finished(records)["status"] == "rolled_back"
    assert rollback_lines(result.stdout) == [
        "↺ rolling back after four: four, three, two, one",
        "▶ [undo] four: undo (four failed)", "↺ four rolled_back",
        "▶ [undo] three: undo (four failed)", "↺ three rolled_back",
        "▶ [undo] two: undo (four failed)", "↺ two rolled_back",
        "▶ [undo] one: undo (four failed)", "↺ one rolled_back",
    ]


def test_a_failing_undo_is_recorded_and_unwinding_goes_on(ws):
    result = ws.run("policy_rollback_failed")
    assert result.exit_code == 5
    assert trail(ws)[-3:] == ["undo-three", "undo-two", "undo-one"]
    records = result.records()
    undone = [(r["step"], r["status"]) for r in events(records, "step_finished")
              if r.get("phase") == "rollback"]
    assert undone == [("three", "rolled_back"), ("two", "failed"), ("one", "rolled_back")]
    failed_undo = events(records, "step_finished", step="two", phase="rollback")[0]
    assert failed_undo["reason"].startswith("rollback failed: command exited with 9")
    assert events(records, "rollback_finished")[0]["status"] == "failed"
    assert finished(records)["status"] == "rollback_failed"
    assert "run rollback_failed (exit 5)" in result.stdout


def test_the_file_default_policy_rolls_back(ws):
    result = ws.run("policy_default", "--fail-at", "three")
    assert result.exit_code == 1
    assert trail(ws) == ["one", "two", "three", "undo-three", "undo-two", "undo-one"]
    assert finished(result.records())["status"] == "rolled_back"


def test_a_step_policy_overrides_the_file_default(ws):
    result = ws.run("policy_default", "--fail-at", "two")
    assert result.exit_code == 1
    assert trail(ws) == ["one", "two"]
    records = result.records()
    assert not events(records, "rollback_started")
    assert finished(records)["status"] == "failed"
    assert events(records, "step_finished", step="two")[0]["reason"] == \
        "failure injected by --fail-at"


@pytest.mark.parametrize(("fixture", "step", "undo"), [
    ("policy_rollback", "four", ["four", "three", "two", "one"]),
    ("policy_rollback", "three", []),  # the default policy, abort: nothing is undone
    ("policy_default", "three", ["three", "two", "one"]),
    ("policy_default", "one", ["one"]),
    ("control_flow", "finish", ["per_host[web2]", "per_host[web1]"]),
])
def test_the_dry_run_rollback_plan_matches_a_real_fail_at_run(ws, fixture, step, undo):
    plan = ws.run(fixture, "--dry-run", "--fail-at", step, "--output", "json")
    assert plan.exit_code == 0, plan.output
    planned = [entry["name"] for entry in json.loads(plan.stdout)["rollback"]]
    assert planned == undo
    text = ws.run(fixture, "--dry-run", "--fail-at", step)
    assert [line.split()[1].rstrip(":") for line in text.stdout.splitlines()
            if line.startswith("  undo ")] == planned
    assert not (ws.root / ".runbook").exists()
    real = ws.run(fixture, "--fail-at", step)
    records = real.records()
    assert [name for r in events(records, "rollback_started") for name in r["steps"]] == planned
    assert step_order(records, "rollback") == planned


def test_the_json_summary_is_one_document_on_stdout(ws):
    result = ws.run("policy_rollback", "--output", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["status"], summary["exit_code"], summary["failed_step"]) == \
        ("rolled_back", 1, "four")
    assert [(s["name"], s["status"]) for s in summary["steps"]] == [
        ("one", "rolled_back"), ("two", "rolled_back"), ("no_undo", "succeeded"),
        ("three", "rolled_back"), ("four", "failed")]
    assert "↺ rolling back after four" in result.stderr
