"""`http` and hostile values (LANGUAGE.md §6.6): URL encoding by place, JSON bodies built from
values, CR/LF refused without showing the value, a deadline for the whole request, Ctrl-C."""

import json
import signal
import urllib.parse

import pytest
from conftest import CANARY, events, finished, wait_for

HOSTILE = ['", "admin": true, "x": "', "}, {\"evil\": 1", "a\\\"b", "line\nbreak", "ü ✓",
           "{{x}}", ""]


def test_url_values_are_encoded_for_their_place(ws, server):
    result = ws.run("http_safety", "--param", f"base_url={server.url}")
    assert result.exit_code == 0, result.output
    path = server.requests[0]["path"]
    assert path.startswith("/echo/a%2Fb%3Fc%23d%20e?")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    # The encoded value stays one query value; raw() lets the text add a parameter.
    assert query == {"q": ["x&admin=1"], "raw": ["x"], "admin": ["1"]}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_json_body_gets_the_value_and_no_new_field(ws, server, name):
    result = ws.run("http_safety", "--param", f"base_url={server.url}", "--param",
                    f"name={name}")
    assert result.exit_code == 0, result.output
    posted = [r for r in server.requests if r["method"] == "POST"][0]
    assert json.loads(posted["body"]) == {"name": name, "label": name, "count": len(name)}
    assert posted["headers"]["content-type"] == "application/json"


def test_a_header_value_with_a_line_break_is_refused_without_showing_it(ws, server):
    secret = CANARY + "\r"
    result = ws.run("http_header_secret", "--param", f"base_url={server.url}",
                    env={"CANARY_TOKEN": secret})
    assert result.exit_code == 1
    assert "header Authorization: its value holds a line break" in result.output
    assert CANARY not in result.output
    run_dir = result.run_dirs()[0]
    assert CANARY not in (run_dir / "transcript.jsonl").read_text()
    assert not server.requests


def test_timeout_bounds_the_whole_request(ws, server):
    result = ws.run("http_slow", "--param", f"base_url={server.url}")
    assert result.exit_code == 1, result.output
    (request,) = events(result.records(), "http_request")
    assert request["error"] == ("timed out: the whole request took longer than the step's "
                                "timeout 3s")
    # The server had 20 s of trickling to give; the step ended well before half of it.
    assert server.trickled < 5
    assert request["duration_ms"] < 10_000


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_request_ends_the_run_as_interrupted(ws, server, sig):
    proc = ws.start("run", ws.add("http_slow"), "--param", f"base_url={server.url}")
    try:
        wait_for(lambda: server.trickled >= 1, what="the request to start")
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 130
    records = [json.loads(line) for line in
               next((ws.root / ".runbook" / "runs").iterdir()).joinpath(
                   "transcript.jsonl").read_text().splitlines()]
    assert finished(records)["status"] == "interrupted"


@pytest.mark.parametrize("name", HOSTILE)
def test_to_json_sends_the_value_as_json(ws, server, name):
    """`body to_json(x)`: a string becomes one JSON string, a list or a parsed object stays
    structured, each sent as application/json."""
    result = ws.run("http_to_json", "--param", f"base_url={server.url}", "--param",
                    f"name={name}")
    assert result.exit_code == 0, result.output
    posted = [r for r in server.requests if r["method"] == "POST"]
    assert [json.loads(r["body"]) for r in posted] == [
        name, [name, len(name), True, 1.5], {"status": "ok", "version": "1.4.2"}]
    assert {r["headers"]["content-type"] for r in posted} == {"application/json"}
    assert f"sent {len(json.dumps(name, ensure_ascii=False))} characters" in result.output


def test_to_json_is_a_string_to_check(ws):
    """`runbook check` types `to_json(x)` as a string: adding a number to it is reported."""
    text = 'let n = to_json([1, 2]) + 1\nstep s "S" { note "{{n}}" }\n'
    (ws.root / "typed.runbook").write_text(text, encoding="utf-8")
    result = ws.runbook("check", "typed.runbook")
    assert result.exit_code == 2
    assert "error[E241]" in result.output and "Traceback" not in result.output
