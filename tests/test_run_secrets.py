"""Secrets (LANGUAGE.md §6.2): read from the environment or a file, never printed, recorded
or logged; a missing secret stops a real run before any step."""

import json

import pytest
from conftest import CANARY, Workspace

FILE_CANARY = "canary-file-0d1e2f"
LEAKS = (CANARY, FILE_CANARY)


def everything_on_disk(root) -> dict[str, bytes]:
    """Every file a run left under .runbook/ (transcript, head, output logs)."""
    return {str(p.relative_to(root)): p.read_bytes()
            for p in (root / ".runbook").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory):
    """One run that sends both secrets every way a value can travel (read-only)."""
    ws = Workspace(tmp_path_factory.mktemp("canary"))
    (ws.root / "token.txt").write_text(FILE_CANARY + "\n")
    result = ws.run("secrets_canary", env={"CANARY_TOKEN": CANARY})
    return ws, result


def test_secrets_reach_commands_but_the_output_shows_stars(canary_run):
    _, result = canary_run
    # The two failing steps are tolerated (on_failure continue).
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "token is ***" in lines
    assert "stderr has ***" in lines
    assert "file token is ***" in lines
    assert "✎ captured: ***" in lines
    # A value built from a secret is masked whole, like the secret itself.
    assert "✎ copy=*** joined=***" in lines
    assert "⚠ fails_too tolerated" in result.stdout and "— gave up on ***" in result.stdout


def test_a_secret_never_reaches_stdout_stderr_or_any_file(canary_run):
    ws, result = canary_run
    for leak in LEAKS:
        assert leak not in result.stdout
        assert leak not in result.stderr
        for path, data in everything_on_disk(ws.root).items():
            assert leak.encode() not in data, f"{leak} leaked into {path}"


def test_a_secret_split_across_output_chunks_is_masked_whole(canary_run):
    ws, result = canary_run
    records = result.records()
    split = next(r for r in records if r["event"] == "command_finished"
                 and r["step"] == "split")
    assert split["stdout"]["tail"] == "***\n"
    log = result.run_dirs()[0] / split["stdout"]["log"]
    assert log.read_text() == "***\n"
    assert CANARY[:8] not in result.stdout


def test_secret_derived_values_are_recorded_masked(canary_run):
    _, result = canary_run
    records = result.records()
    values = {r["name"]: r["value"] for r in records if r["event"] == "variable_set"}
    assert values == {"captured": "***", "copy": "***", "joined": "***"}
    interpolated = next(r for r in records if r["event"] == "command_started"
                        and r["step"] == "interpolated")
    assert interpolated["command"] == "echo ***"


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_show_never_prints_a_secret(canary_run, fmt):
    ws, result = canary_run
    shown = ws.runbook("show", str(result.run_dirs()[0]), "--format", fmt)
    assert shown.exit_code == 0, shown.output
    assert "gave up on ***" in shown.stdout
    for leak in LEAKS:
        assert leak not in shown.output


def test_json_summary_and_dry_run_never_print_a_secret(ws):
    (ws.root / "token.txt").write_text(FILE_CANARY + "\n")
    env = {"CANARY_TOKEN": CANARY}
    summary = ws.run("secrets_canary", "--output", "json", env=env)
    plan = ws.run("secrets_canary", "--dry-run", env=env)
    assert "run: echo ***" in plan.stdout
    assert "Secret token from env CANARY_TOKEN: present (value hidden)" in plan.stdout
    for result in (summary, plan):
        for leak in LEAKS:
            assert leak not in result.output


def test_check_warns_where_a_secret_is_interpolated_into_a_command(ws):
    result = ws.runbook("check", ws.add("secrets_canary"))
    assert result.exit_code == 0
    assert "secret `token` is interpolated into a command line" in result.output
    assert "secrets_canary.runbook:19:" in result.output


def test_a_missing_env_secret_stops_the_run_before_any_step(ws):
    result = ws.run("secrets_missing")
    assert result.exit_code == 2
    assert "secret `token` is missing: set env CANARY_MISSING_TOKEN" in result.stderr
    assert not (ws.root / "marker").exists()
    assert not (ws.root / ".runbook").exists()


def test_an_empty_or_missing_file_secret_stops_the_run(ws):
    (ws.root / "token.txt").write_text("")
    result = ws.run("secrets_canary", env={"CANARY_TOKEN": CANARY})
    assert result.exit_code == 2
    assert "secret `file_token` is missing: set file token.txt" in result.stderr
    assert not (ws.root / ".runbook").exists()


def test_a_missing_secret_in_a_dry_run_is_reported_not_fatal(ws):
    result = ws.run("secrets_missing", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Secret token from env CANARY_MISSING_TOKEN: missing" in result.stdout
    assert "a real run would refuse to start" in result.stdout


def test_check_and_watch_titles_show_a_secret_as_stars(ws):
    result = ws.run("secrets_in_names", env={"CANARY_TOKEN": CANARY})
    assert result.exit_code == 0, result.output
    assert "✓ check: the service accepts ***" in result.stdout
    assert "✓ watch: the token *** stays valid (1 samples, 0 misses)" in result.stdout


def test_a_secret_for_item_never_names_a_file(ws):
    result = ws.run("secrets_in_names", env={"CANARY_TOKEN": CANARY})
    assert result.exit_code == 0, result.output
    run_dir = result.run_dirs()[0]
    names = [str(p.relative_to(ws.root)) for p in ws.root.rglob("*")]
    assert not [name for name in names if CANARY in name]
    for path, data in everything_on_disk(ws.root).items():
        assert CANARY.encode() not in data, path
    assert ws.runbook("verify", str(run_dir)).exit_code == 0


def test_a_dry_run_masks_a_secret_for_item(ws):
    result = ws.run("secrets_in_names", "--dry-run", env={"CANARY_TOKEN": CANARY})
    assert "for item = ***:" in result.stdout
    assert "1. step titled: Deploy with ***" in result.stdout


def test_step_titles_and_for_step_names_show_a_secret_as_stars(ws):
    result = ws.run("secrets_in_names", "--output", "json", env={"CANARY_TOKEN": CANARY})
    plan = ws.run("secrets_in_names", "--dry-run", env={"CANARY_TOKEN": CANARY})
    assert result.exit_code == 0, result.output
    for shown in (result.stdout, result.stderr, plan.stdout):
        assert CANARY not in shown


def test_env_values_computed_from_a_secret_are_masked(ws):
    secret = "MiXeD-Case-Secret-42"
    result = ws.run("secrets_env_derived", env={"CANARY_TOKEN": secret})
    assert result.exit_code == 0, result.output
    for form in (secret, secret.upper(), secret.lower()):
        assert form not in result.output
        for path in (ws.root / ".runbook").rglob("*"):
            if path.is_file():
                assert form.encode() not in path.read_bytes(), path
    assert "upper is ***" in result.stdout
    assert "lower is ***" in result.stdout


@pytest.mark.parametrize("secret", ["quote'and\"double", "back\\slash\\n", "new\nline-secret",
                                    "ünïcode-sécret", "x" * 300])
def test_a_failed_check_never_shows_the_secret_in_any_form(ws, secret):
    result = ws.run("secrets_in_checks", env={"CANARY_TOKEN": secret})
    assert result.exit_code == 1, result.output
    assert "token = '***'" in result.output
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], secret[:80], secret[:197]}
    texts = [result.output] + [p.read_text(errors="replace")
                               for p in (ws.root / ".runbook").rglob("*") if p.is_file()]
    for text in texts:
        for form in forms:
            assert form not in text, form


HOSTILE_SECRETS = ["it's \"quoted\" $HOME `x` \\ end", "tab\there-and-more", "ünï-çødé-sécret",
                   "semi;colon&amp|pipe", "dollar$(id)paren", "new\nline-in-secret"]


@pytest.mark.parametrize("secret", HOSTILE_SECRETS)
def test_a_secret_quoted_into_any_context_is_masked_in_every_record(ws, secret):
    result = ws.run("secrets_quoted", env={"CANARY_TOKEN": secret})
    assert result.exit_code == 0, result.output
    plan = ws.run("secrets_quoted", "--dry-run", env={"CANARY_TOKEN": secret})
    texts = [result.output, plan.output] + [
        p.read_text(errors="replace") for p in (ws.root / ".runbook").rglob("*") if p.is_file()]
    pieces = [piece for piece in secret.replace("\n", " ").split() if len(piece) >= 4]
    for text in texts:
        assert secret not in text
        for piece in pieces:
            assert piece not in text, piece
    commands = [r["command"] for r in events_of(ws)]
    assert len(commands) == 6 and all("***" in c for c in commands), commands


def events_of(ws) -> list[dict]:
    run_dir = next((ws.root / ".runbook" / "runs").iterdir())
    records = [json.loads(line) for line in
               (run_dir / "transcript.jsonl").read_text().splitlines()]
    return [r for r in records if r["event"] == "command_started"]
