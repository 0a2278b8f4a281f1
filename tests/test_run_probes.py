"""Retries, checks, watches, expectations and HTTP (LANGUAGE.md §4, §10)."""

import json

import pytest
from conftest import Server, Workspace, closed_port, events, finished


def statuses(records, step):
    return [(r["attempt"], r["status"]) for r in events(records, "step_finished", step=step)
            if r.get("phase", "step") == "step"]


# ---------------------------------------------------------------------- retry


def test_retry_runs_the_step_again_until_it_succeeds(ws):
    result = ws.run("retry_counter")
    assert result.exit_code == 0, result.output
    assert (ws.root / "count.txt").read_text() == "3\n"
    records = result.records()
    assert [r["attempt"] for r in events(records, "step_started")] == [1, 2, 3]
    assert statuses(records, "flaky") == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert "retrying in 100ms (attempt 2 of 4)" in result.stdout
    assert "retrying in 200ms (attempt 3 of 4)" in result.stdout


def test_rollback_waits_for_the_last_attempt(ws):
    result = ws.run("retry_rollback")
    assert result.exit_code == 1
    assert (ws.root / "trail.txt").read_text().split() == [
        "first", "attempt", "attempt", "attempt", "undo-always", "undo-first"]
    records = result.records()
    assert statuses(records, "always") == [(1, "failed"), (2, "failed"), (3, "failed")]
    last_attempt = records.index(events(records, "step_finished", step="always")[2])
    rollback = records.index(events(records, "rollback_started")[0])
    assert rollback == last_attempt + 1
    assert finished(records)["status"] == "rolled_back"


# ---------------------------------------------------------------------- check and watch


def test_a_check_polls_until_its_expectation_holds(ws):
    result = ws.run("check_polling")
    assert result.exit_code == 0, result.output
    records = result.records()
    passed = events(records, "check_passed")
    assert [(c["step"], c["attempts"]) for c in passed] == [("ready", 3), ("inline", 1)]
    assert passed[0]["expectations"] == [
        {"expr": "number(stdout) >= 3", "actual": "number(stdout) = 3", "ok": True}]
    assert "✓ check: the counter keeps going" in result.stdout


def test_a_failing_check_reports_the_last_attempts_actual_values(ws):
    result = ws.run("check_failing")
    assert result.exit_code == 1
    polls = int((ws.root / "polls.txt").read_text())
    assert polls >= 2
    failed = events(result.records(), "check_failed")[0]
    assert failed["attempts"] == polls
    assert failed["expectations"] == [
        {"expr": "number(stdout) > 100", "actual": f"number(stdout) = {polls}", "ok": False},
        # stdout is trimmed for `expect`, as it is for `into`.
        {"expr": 'stdout contains ""', "actual": f"stdout = '{polls}'", "ok": True},
    ]
    reason = events(result.records(), "step_finished")[0]["reason"]
    assert reason == (f"check 'The counter passes 100' failed after {polls} attempts: "
                      f"number(stdout) > 100 (actual: number(stdout) = {polls})")
    assert reason in result.stdout


def test_a_watch_samples_its_whole_window(ws):
    result = ws.run("watch_tolerate")
    passed = events(result.records(), "check_passed", step="steady")[0]
    assert (passed["attempts"], passed["misses"]) == (3, 0)
    assert "✓ watch: the service answers (3 samples, 0 misses)" in result.stdout


def test_a_watch_fails_as_soon_as_misses_exceed_tolerate(ws):
    result = ws.run("watch_tolerate")
    assert result.exit_code == 1
    # Samples 3 and 4 miss; the one-minute window is not waited out.
    assert (ws.root / "samples.txt").read_text() == "4\n"
    failed = events(result.records(), "check_failed", step="degrading")[0]
    assert (failed["attempts"], failed["misses"]) == (4, 2)
    assert ("watch 'the counter stays under 3': 2 misses (tolerates 1): number(stdout) < 3 "
            "(actual: number(stdout) = 4)") in result.stdout


def test_expectations_see_exit_code_stdout_and_stderr(ws):
    result = ws.run("expect_run")
    assert result.exit_code == 1
    records = result.records()
    passed = events(records, "check_passed", step="probe_run")
    assert [c["title"] for c in passed] == ["all three", "no expect: exit 0 passes"]
    assert [e["ok"] for e in passed[0]["expectations"]] == [True, True, True]
    assert passed[1]["expectations"] == [
        {"expr": "exit_code == 0", "actual": "exit_code = 0", "ok": True}]
    failed = events(records, "check_failed", step="no_expect_fails")[0]
    assert failed["expectations"] == [
        {"expr": "exit_code == 0", "actual": "exit_code = 1", "ok": False}]


# ---------------------------------------------------------------------- http


@pytest.fixture(scope="module")
def http_run(tmp_path_factory):
    """One run of the HTTP fixture against its own local server (read-only)."""
    server = Server()
    try:
        ws = Workspace(tmp_path_factory.mktemp("http"))
        result = ws.run("http_requests", "--param", f"base_url={server.url}")
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    return server, result


def test_http_into_keeps_status_body_and_lower_cased_headers(http_run):
    _, result = http_run
    values = {r["name"]: r["value"] for r in events(result.records(), "variable_set")}
    assert values["version"] == "1.4.2"
    assert values["status"] == 200
    assert values["service"] == "demo"
    assert values["content_type"] == "application/json"
    assert values["moved_status"] == 302
    assert values["ok"]["status"] == 200
    assert json.loads(values["ok"]["body"]) == {"status": "ok", "version": "1.4.2"}
    assert all(name == name.lower() for name in values["ok"]["headers"])


def test_http_sends_headers_and_body(http_run):
    server, result = http_run
    post = next(r for r in server.requests if r["method"] == "POST")
    assert post["path"] == "/echo"
    assert post["headers"]["x-request-id"] == "req-1.4.2"
    assert post["headers"]["content-type"] == "application/json"
    assert json.loads(post["body"]) == {"version": "1.4.2"}
    values = {r["name"]: r["value"] for r in events(result.records(), "variable_set")}
    assert json.loads(values["echoed_body"]) == {"version": "1.4.2"}


def test_http_requests_are_recorded_and_checks_see_the_response(http_run):
    server, result = http_run
    records = result.records()
    requests = [(r["method"], r["url"].removeprefix(server.url), r["status"])
                for r in events(records, "http_request")]
    assert requests == [("GET", "/ok", 200), ("GET", "/redirect", 302), ("POST", "/echo", 200),
                        ("GET", "/ok", 200), ("HEAD", "/ok", 200)]
    healthy = events(records, "check_passed", step="healthy")[0]
    assert [e["ok"] for e in healthy["expectations"]] == [True, True, True]
    head = events(records, "check_passed", step="no_expect")[0]
    assert head["expectations"][0]["expr"] == "status in 200..399"


def test_a_500_or_a_refused_connection_fails_the_step(ws, server):
    refused = f"http://127.0.0.1:{closed_port()}"
    result = ws.run("http_failures", "--param", f"base_url={server.url}",
                    "--param", f"refused_url={refused}")
    # Each step tolerates its failure (on_failure continue): the run itself succeeds.
    assert result.exit_code == 0
    assert all(r.get("tolerated") for r in events(result.records(), "step_finished"))
    reasons = {r["step"]: r["reason"] for r in events(result.records(), "step_finished")}
    assert reasons["server_error"] == f"GET {server.url}/fail answered 500"
    assert reasons["refused"].startswith(f"GET {refused}/ok: ")
    assert "refused" in reasons["refused"].lower()
    assert reasons["check_500"] == ("check 'answers 2xx or 3xx' failed after 1 attempt: "
                                    "status in 200..399 (actual: status = 500)")
    assert reasons["check_refused"].startswith("check 'answers' failed after 1 attempt: "
                                               "GET request (actual: ")
    assert finished(result.records())["status"] == "succeeded"
