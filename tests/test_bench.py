"""The benchmark runner: one command, a table or one JSON document, peers skipped when absent.

These run the real runner on tiny sizes and one run each; they check what it reports and
that every tool it drives really ran its steps (a failed command fails its part), never
the figures themselves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
RUNNER = BENCH / "bench_run.py"
PEERS = {"just": ("just", "rust-just"), "task": ("task", "go-task-bin"),
         "ansible": ("ansible-playbook", "ansible-core")}
TINY = ["--runs", "1", "--steps", "2", "--check-sizes", "3,6,12", "--megabytes", "2"]


def installed(program: str) -> bool:
    """The runner's own rule: beside this Python first, then on PATH."""
    beside = Path(sys.executable).parent / program
    return beside.is_file() or shutil.which(program) is not None


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNNER), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict:
    done = bench(*TINY, "--json", cwd=tmp_path_factory.mktemp("bench"))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_json_names_the_machine_and_the_tools(document: dict) -> None:
    machine = document["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["python"] == sys.version.split()[0]
    assert len(machine["load_average"]) == len(machine["load_average_after"]) == 3
    assert document["tools"]["runbook"].startswith("runbook ")
    assert document["parts"] == ["startup", "check", "steps", "recording", "stream"]
    assert document["errors"] == {}


def test_every_figure_is_a_median_of_its_runs(document: dict) -> None:
    for key, figure in document["figures"].items():
        assert figure["unit"], key
        if figure["samples"]:
            assert len(figure["samples"]) == document["runs"] == 1
            assert figure["value"] == pytest.approx(figure["samples"][0], rel=0.01, abs=0.01)
    assert {"startup.version_ratio", "check.growth"} <= set(document["ratios"])


def test_targets_carry_their_verdict(document: dict) -> None:
    targets = {t["key"]: t for t in document["targets"]}
    assert set(targets) == {
        "startup.version_ratio", "check.growth", "steps.vs_just", "steps.overhead",
        "steps.vs_ansible", "recording.per_step", "stream.rate", "stream.peak_rss",
    }
    for target in targets.values():
        if target["value"] is None:
            assert target["passed"] is None
        elif target["op"] == "<=":
            assert target["passed"] == (target["value"] <= target["limit"])
        else:
            assert target["passed"] == (target["value"] >= target["limit"])
    verdicts = [t["passed"] for t in targets.values() if t["passed"] is not None]
    assert document["all_passed"] == all(verdicts)


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_a_peer_is_timed_when_installed_and_skipped_when_not(document: dict, peer: str) -> None:
    program, package = PEERS[peer]
    skipped = [note for note in document["skipped"] if note.startswith(program)]
    if installed(program):
        assert f"steps.{peer}" in document["figures"]
        assert not skipped
        assert document["tools"][program] not in ("", "not installed")
    else:
        assert f"steps.{peer}" not in document["figures"]
        assert skipped == [f"{program}: not installed (pip install {package}), skipped"]


def test_the_table_lists_figures_and_verdicts(tmp_path: Path) -> None:
    done = bench(*TINY, "--parts", "startup,steps", "--peers", "", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("runbook-lang benchmarks: medians of 1 whole-process runs")
    for line in ("python -c pass (baseline)", "runbook --version", "shell script, 2 steps",
                 "runbook run, 2 steps", "runbook over the shell script, per step"):
        assert line in out
    verdicts = [line.split()[0] for line in out.split("\ntargets\n", 1)[1].splitlines()]
    assert len(verdicts) == 4
    assert set(verdicts) <= {"PASS", "MISS", "n/a"}
    # Without peers their targets cannot be judged, and say so.
    assert sum(v == "n/a" for v in verdicts) == 2


def test_bad_arguments_get_a_message_not_a_traceback(tmp_path: Path) -> None:
    for args, message in ((["--parts", "startup,nope"], "unknown part nope"),
                          (["--peers", "make"], "unknown peer make"),
                          (["--check-sizes", "1,x"], "not a list of step counts"),
                          (["--runs", "0"], "must be at least 1")):
        done = bench(*args, cwd=tmp_path)
        assert done.returncode == 2
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def test_profile_shows_where_the_time_goes(tmp_path: Path) -> None:
    done = bench("--profile", "--steps", "3", "--top", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("top 5 by cumulative time", "top 5 by own time", "own time by area"):
        assert heading in out
    cumulative = out.split("top 5 by cumulative time\n", 1)[1].split("\n\n", 1)[0]
    assert len(cumulative.splitlines()) == 6  # header and five rows
    assert "runbook_lang/" in out


def test_profile_of_check_shows_its_stages(tmp_path: Path) -> None:
    done = bench("--profile", "check", "--steps", "40", "--top", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("runbook check of 40 generated steps\n  wall time: ")
    stages = out.split("where the time goes (sampled; ", 1)[1].split("\n\n", 1)[0]
    rows = stages.splitlines()[2:-1]
    assert rows and "imports" in stages  # start-up alone is tens of milliseconds
    assert sum(float(row.split()[1].rstrip("%")) for row in rows) == pytest.approx(100, abs=1)
    functions = out.split("top 30 by own time under cProfile", 1)[1].splitlines()[1:]
    assert len(functions) == 31  # header and thirty rows
    assert any("runbook_lang/syntax/" in row for row in functions)


def test_a_command_that_fails_fails_its_part_with_its_message(tmp_path: Path) -> None:
    # The base interpreter, outside the virtual environment, has no runbook to time.
    base = Path(sys.base_prefix) / "bin" / "python3"
    env = {"PATH": "/usr/bin:/bin"}
    probe = subprocess.run([base, "-c", "import runbook_lang"], cwd=tmp_path, env=env,
                           capture_output=True)
    if probe.returncode == 0:
        pytest.skip("the base interpreter has runbook installed")
    done = subprocess.run([base, str(RUNNER), "--parts", "startup", "--runs", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "tools: runbook does not start" in done.stdout
    assert "\nstartup\n  FAILED: " in done.stdout
    assert "No module named runbook_lang" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
