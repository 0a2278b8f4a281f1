"""Dry-run (LANGUAGE.md §8): the plan of every fixture (snapshots, text and JSON), and a
dry-run changes nothing: no file, no process, no request, no lock."""

import json
import shlex

import pytest
from conftest import FIXTURES, normalise

ALL = sorted(p.stem for p in FIXTURES.glob("*.runbook") if p.is_file())


def dry_run_args(name: str) -> list[str]:
    """Extra arguments a fixture asks for in a `# dry-run: ARGS` comment line."""
    for line in (FIXTURES / f"{name}.runbook").read_text().splitlines():
        if line.startswith("# dry-run:"):
            return shlex.split(line.removeprefix("# dry-run:"))
    return []


@pytest.mark.parametrize("name", ALL)
def test_plan_text(ws, snapshot, name):
    result = ws.run(name, "--dry-run", *dry_run_args(name))
    shown = f"exit {result.exit_code}\n{result.stdout}"
    if result.stderr:
        shown += f"--- stderr\n{result.stderr}"
    assert normalise(shown, ws.root) == snapshot


@pytest.mark.parametrize("name", ALL)
def test_plan_json(ws, snapshot, name):
    result = ws.run(name, "--dry-run", "--output", "json", *dry_run_args(name))
    if result.exit_code != 0:
        # Refused before planning: still one JSON document on stdout, saying so.
        assert result.exit_code == 2
        assert json.loads(result.stdout) == {"status": "refused", "exit_code": 2,
                                             "error": json.loads(result.stdout)["error"]}
        return
    assert result.stdout.count("\n") == len(result.stdout.splitlines())
    plan = json.loads(normalise(result.stdout, ws.root))  # one document, nothing else
    assert plan["mode"] == "dry-run"
    assert plan == snapshot


# ---------------------------------------------------------------------- no effects


def test_a_dry_run_changes_no_file_and_sends_no_request(ws, server):
    book = ws.root / "book"
    ws.add("dryrun_effects", book)
    before = ws.files()
    result = ws.runbook("run", "book/dryrun_effects.runbook", "--dry-run",
                        "--param", f"base_url={server.url}")
    json_result = ws.runbook("run", "book/dryrun_effects.runbook", "--dry-run", "--output",
                             "json", "--param", f"base_url={server.url}")
    assert (result.exit_code, json_result.exit_code) == (0, 0), result.output
    assert ws.files() == before
    assert server.requests == []
    assert f"http: POST {server.url}/echo" in result.stdout
    assert "run: echo started > started.txt" in result.stdout


def test_unknown_values_keep_their_template_with_a_legend(ws):
    result = ws.run("dryrun_effects", "--dry-run")
    assert "3. step announce: Announce <commit>" in result.stdout
    assert "run: echo deploying <commit> with $TOKEN" in result.stdout
    legend = result.stdout.split("Known only at run time", 1)[1].split("\n\n", 1)[0]
    assert "  <commit>  captured by `run … into` in step switch" in legend.splitlines()
    plan = json.loads(ws.run("dryrun_effects", "--dry-run", "--output", "json").stdout)
    assert plan["legend"]["commit"] == "captured by `run … into` in step switch"


def test_a_when_on_an_unknown_is_decided_at_run_time(ws):
    result = ws.run("dryrun_effects", "--dry-run")
    assert ('4. step only_if_new: Only when the commit is new  [decided at run time: '
            'when commit != "abc1234"]') in result.stdout


def test_for_steps_are_expanded_when_the_list_is_known(ws):
    result = ws.run("dryrun_effects", "--dry-run", "--param", "hosts=a,b,c")
    plan = json.loads(ws.run("dryrun_effects", "--dry-run", "--output", "json",
                             "--param", "hosts=a,b,c").stdout)
    names = [step["name"] for step in plan["steps"]]
    assert names[4:7] == ["deploy[a]", "deploy[b]", "deploy[c]"]
    assert "5.3. step deploy[c]: Deploy c" in result.stdout


def test_gates_show_approvers_and_quorum(ws):
    result = ws.run("dryrun_effects", "--dry-run", "--approve", "approve_prod=alice")
    lines = result.stdout.splitlines()
    at = lines.index("6. gate approve_prod: Approve production")
    assert lines[at + 1:at + 4] == [
        "     approval: needs 2 approvals from alice, bob, carol",
        "     message: Check the dashboards first",
        "     pre-approved: alice",
    ]


def test_a_gate_skipped_by_when_is_shown_skipped(ws):
    result = ws.run("dryrun_effects", "--dry-run", "--param", "environment=staging")
    assert ('6. gate approve_prod: Approve production  [skipped: when environment == '
            '"production" is false]') in result.stdout


def test_missing_secrets_are_reported_not_fatal(ws):
    result = ws.run("dryrun_effects", "--dry-run", "--output", "json")
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["secrets"] == [{"name": "token", "source": "env CANARY_DRY_TOKEN",
                                "status": "missing"}]
    assert any("secrets are not set" in note for note in plan["notes"])


def test_a_dry_run_takes_no_lock_and_records_no_transcript(ws):
    result = ws.run("dryrun_effects", "--dry-run")
    assert result.exit_code == 0
    assert not (ws.root / ".runbook").exists()


def test_a_dry_run_prints_the_plan_and_nothing_else(ws):
    result = ws.run("control_flow", "--dry-run", "--fail-at", "finish")
    assert result.exit_code == 0
    assert result.stdout.startswith("Plan for control_flow.runbook")


def test_a_step_failing_while_planned_is_shown_in_the_plan(ws):
    result = ws.run("dryrun_failing", "--dry-run")
    assert "internal error" not in result.stderr
    assert result.exit_code == 0
    assert "1. step parse: Parse the payload" in result.stdout
    assert "json(): not valid JSON" in result.stdout


def test_a_plan_reads_an_imported_modules_let(ws):
    result = ws.run("control_import", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "set from_module = from the module" in result.stdout
