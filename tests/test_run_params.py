"""Params (LANGUAGE.md §8): `--param` parsed by type, a YAML params file, and every refusal
stopping the run before anything ran."""

import pytest


def notes(result) -> list[str]:
    return [line.strip()[2:] for line in result.stdout.splitlines()
            if line.strip().startswith("✎ ")]


def test_cli_values_are_parsed_by_the_param_type(ws):
    result = ws.run("params_types", "--param", "replicas=3", "--param", "ratio=1.25",
                    "--param", "canary=yes", "--param", "pause=90s",
                    "--param", 'hosts=["a", "b", "c"]', "--param", "label=blue")
    assert result.exit_code == 0, result.output
    assert notes(result) == [
        "replicas+1=4 ratio*2=2.5 canary=true not=false",
        "pause+1s=1m31s hosts=3 first=a label=BLUE",
    ]
    started = result.records()[0]
    assert started["params"] == {"replicas": 3, "ratio": 1.25, "canary": True,
                                 "pause": "1m30s", "hosts": ["a", "b", "c"], "label": "blue"}


@pytest.mark.parametrize(("text", "value"), [
    ("true", "true"), ("yes", "true"), ("1", "true"),
    ("false", "false"), ("no", "false"), ("0", "false"),
])
def test_bool_params_read_true_false_yes_no_1_0(ws, text, value):
    result = ws.run("params_types", "--param", f"canary={text}")
    assert result.exit_code == 0, result.output
    assert f"canary={value} " in notes(result)[0]


def test_list_params_read_comma_separated_text(ws):
    result = ws.run("params_types", "--param", "hosts=web1, web2,web3")
    assert result.exit_code == 0, result.output
    assert "hosts=3 first=web1 " in notes(result)[1]
    assert result.records()[0]["params"]["hosts"] == ["web1", "web2", "web3"]


def test_params_file_gives_values_and_the_command_line_wins(ws):
    (ws.root / "params.yaml").write_text(
        "replicas: 5\nratio: 2\ncanary: true\npause: 2m\nhosts: [x, y]\nlabel: from-file\n")
    result = ws.run("params_types", "--params", "params.yaml", "--param", "label=from-cli")
    assert result.exit_code == 0, result.output
    assert notes(result) == [
        "replicas+1=6 ratio*2=4.0 canary=true not=false",
        "pause+1s=2m1s hosts=2 first=x label=FROM-CLI",
    ]


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "marker=m", "--param", "replicsa=3"],
     "unknown param `replicsa` (did you mean `replicas`?)"),
    (["--param", "marker=m", "--param", "replicas=three"],
     "param `replicas` is int: cannot read 'three' as int"),
    (["--param", "marker=m", "--param", "environment=prod"],
     "param `environment`: 'prod' is not one of 'development', 'staging', 'production'"),
    (["--param", "marker=m", "--param", "version=v1.2"],
     "param `version`: 'v1.2' does not match the pattern"),
    ([], "param `marker` is required: pass --param marker=VALUE"),
], ids=["unknown-name", "type-error", "choices-miss", "pattern-miss", "missing-required"])
def test_a_refused_param_is_exit_2_and_nothing_runs(ws, args, message):
    result = ws.run("params_checked", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (ws.root / "m").exists()
    assert not (ws.root / ".runbook").exists()


def test_a_refused_params_file_value_is_exit_2(ws):
    (ws.root / "params.yaml").write_text("marker: m\nreplicas: [1, 2]\n")
    result = ws.run("params_checked", "--params", "params.yaml")
    assert result.exit_code == 2
    assert "param `replicas` is int, but the params file gives list [1, 2]" in result.stderr
    assert not (ws.root / "m").exists()
    assert not (ws.root / ".runbook").exists()


def test_valid_params_run_the_step(ws):
    result = ws.run("params_checked", "--param", "marker=m", "--param", "environment=production",
                    "--param", "version=2.10.3")
    assert result.exit_code == 0, result.output
    assert (ws.root / "m").exists()


def test_a_string_param_from_a_params_file_keeps_the_text_as_written(ws):
    # YAML alone reads 1.10 as the float 1.1 and 0123 as the octal number 83.
    (ws.root / "types.yaml").write_text("label: 1.10\n")
    result = ws.run("params_types", "--params", "types.yaml")
    assert result.exit_code == 0, result.output
    assert notes(result)[1].endswith("label=1.10")
    (ws.root / "checked.yaml").write_text("marker: 0123\n")
    result = ws.run("params_checked", "--params", "checked.yaml")
    assert result.exit_code == 0, result.output
    assert (ws.root / "0123").exists()
