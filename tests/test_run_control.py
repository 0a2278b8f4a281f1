"""Control flow (LANGUAGE.md §3, §4, §7, §10): when, set, if, for, for-steps, tasks, imported
modules, note, wait, fail and finally."""

import pytest
from conftest import events, finished, step_order


def trail(ws) -> list[str]:
    return (ws.root / "trail.txt").read_text().splitlines()


def test_when_false_skips_with_the_reason_recorded(ws):
    result = ws.run("control_when")
    assert result.exit_code == 0, result.output
    assert trail(ws) == ["announce", "last"]
    records = result.records()
    skipped = {r["step"]: r["reason"] for r in events(records, "step_finished", status="skipped")}
    assert skipped == {"prod_only": 'when environment == "production" is false',
                       "prod_gate": 'when environment == "production" is false'}
    assert '↷ prod_only skipped (0.00s) — when environment == "production" is false' \
        in result.stdout


def test_when_true_runs_the_step(ws):
    result = ws.run("control_when", "--param", "environment=production",
                    "--approve", "prod_gate=alice")
    assert result.exit_code == 0, result.output
    assert trail(ws) == ["announce", "prod"]


@pytest.mark.parametrize(("level", "branch"), [(20, "big"), (0, "small")])
def test_if_takes_the_first_branch_that_holds(ws, level, branch):
    result = ws.run("control_flow", "--param", f"level={level}", "--param", "hosts=[]")
    assert result.exit_code == 0, result.output
    assert trail(ws)[0] == branch


def test_set_if_for_note_wait_and_task_calls(ws):
    result = ws.run("control_flow")
    assert result.exit_code == 0, result.output
    assert trail(ws) == [
        "medium", "loop web1", "loop web2",
        "deploy db1:8080 blue", "deploy db2:9090 green",
        "step web1", "step web2", "finish",
    ]
    records = result.records()
    assert [(r["name"], r["value"], r["step"]) for r in events(records, "variable_set")] == [
        ("count", 20, "branch")]
    assert [n["text"] for n in events(records, "note")] == [
        "hello: count is 20", "Manual step:\n  drain the old pool"]
    assert "    ✎ hello: count is 20\n" in result.stdout
    assert "    ✎ Manual step:\n        drain the old pool\n" in result.stdout
    assert "⏳ waiting 100ms" in result.stdout


def test_for_step_instances_are_steps_of_their_own(ws):
    result = ws.run("control_flow", "--param", "hosts=a,b,c")
    assert result.exit_code == 0, result.output
    records = result.records()
    assert step_order(records) == ["branch", "calls", "per_host[a]", "per_host[b]",
                                   "per_host[c]", "finish"]
    titles = [r["title"] for r in events(records, "step_started")
              if r["step"].startswith("per_host")]
    assert titles == ["Deploy a", "Deploy b", "Deploy c"]
    assert "▶ [3/4] per_host[b] [2/3]: Deploy b" in result.stdout


def test_for_step_instances_are_undone_one_by_one_in_reverse(ws):
    result = ws.run("control_flow", "--fail-at", "finish")
    assert result.exit_code == 1
    assert trail(ws)[-3:] == ["finish", "undo web2", "undo web1"]
    records = result.records()
    assert events(records, "rollback_started")[0]["steps"] == ["per_host[web2]",
                                                              "per_host[web1]"]
    assert step_order(records, "rollback") == ["per_host[web2]", "per_host[web1]"]


def test_imported_module_tasks_run_with_defaults_and_named_args(ws):
    ws.run("control_import")
    assert trail(ws) == ["hello ops from the module!", "hello dev from the module?"]


def test_imported_module_lets_are_read_through_the_alias(ws):
    result = ws.run("control_import")
    assert result.exit_code == 0, result.output
    values = {r["name"]: r["value"] for r in events(result.records(), "variable_set")}
    assert values == {"from_module": "from the module"}


def test_finally_sees_run_status_after_success(ws):
    result = ws.run("control_finally")
    assert result.exit_code == 0, result.output
    assert trail(ws) == ["work", "finally succeeded []"]
    assert step_order(result.records(), "finally") == ["finally"]


def test_finally_sees_run_status_and_failed_step_after_a_failure(ws):
    result = ws.run("control_finally", "--param", "fail_step=yes")
    assert result.exit_code == 1
    assert trail(ws) == ["work", "finally failed [work]"]
    records = result.records()
    assert events(records, "step_finished", step="work")[0]["reason"] == "the work failed"
    assert finished(records)["status"] == "failed"


def test_a_failing_finally_turns_success_into_failure(ws):
    result = ws.run("control_finally", "--param", "fail_finally=yes")
    assert result.exit_code == 1
    records = result.records()
    assert events(records, "step_finished", step="finally")[0]["status"] == "failed"
    assert finished(records)["status"] == "failed"
    assert finished(records)["failed_step"] == "finally"
    assert "run failed (exit 1)" in result.stdout


def test_a_failing_finally_never_turns_failure_into_success(ws):
    result = ws.run("control_finally", "--param", "fail_step=yes",
                    "--param", "fail_finally=yes")
    assert result.exit_code == 1
    records = result.records()
    assert finished(records)["status"] == "failed"
    assert finished(records)["failed_step"] == "work"


def test_from_skips_earlier_steps_with_the_reason_recorded(ws):
    result = ws.run("control_flow", "--from", "per_host")
    assert result.exit_code == 0, result.output
    assert trail(ws) == ["step web1", "step web2", "finish"]
    skipped = {r["step"]: r["reason"] for r in events(result.records(), "step_finished",
                                                         status="skipped")}
    assert skipped == {"branch": "before --from per_host: skipped by the operator",
                       "calls": "before --from per_host: skipped by the operator"}
