"""Steps on hosts under pressure, through the real `runbook` command against the real test
fleet: timeouts and Ctrl-C leave nothing running on the hosts, secrets stay out of the hosts'
process tables, hostile params and host names stay values, and `kill -9`, `--limit` and
`--from NAME[host]` behave (LANGUAGE.md §11).

The fleet's "hosts" are aliases of one local sshd: their process table is this machine's.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from conftest import alive, events, finished, read_transcript, wait_for
from fleetrun import HOST_DIR, fleet_workspace, log_line  # noqa: F401  (the `fws` fixture)

from runbook_lang.executors.local import group_alive

WEB = ["web1", "web2", "web3", "web4", "web5"]


def cmdlines() -> dict[int, bytes]:
    """Every live process's argument vector (NULs between the arguments)."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and alive(int(name)):
            try:
                found[int(name)] = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                pass
    return found


def marked(marker: str) -> list[int]:
    """Live processes whose arguments hold `marker`."""
    return [pid for pid, args in cmdlines().items() if marker.encode() in args]


def wait_for_file(path: Path, what: str) -> str:
    return wait_for(lambda: path.exists() and path.read_text().strip(), timeout=60, what=what)


# Wait (boundedly) until the host's `go` file exists.
WAIT_FOR_GO = (f"i=0; while [ ! -e {HOST_DIR}/go ] && [ $i -lt 600 ]; "
               "do sleep 0.1; i=$((i+1)); done")


def hanging(marker: str) -> str:
    """A command that records its shell's pid on the host, then sleeps a long time (`marker`
    is a sleep length unique to the test, to find the sleep in the process table)."""
    return f"echo $$ > {HOST_DIR}/pid; sleep {marker}"


# ---------------------------------------------------------------------- nothing survives


def test_a_timeout_stops_the_remote_commands_of_every_host(fws):
    marker = "3011.5"
    name = fws.write(f"""\
        step hang "Hang on {{{{host}}}}" on ["web1", "web2"] {{
          timeout 2s
          run "{hanging(marker)}"
        }}
        """)
    result = fws.run(name)
    assert result.exit_code == 1, result.output
    records = result.records()
    for host in ("web1", "web2"):
        [end] = [r for r in events(records, "step_finished") if r["step"] == f"hang[{host}]"]
        assert end["status"] == "failed" and "timed out" in end["reason"], end
        pid = int(fws.host_file(host, "pid").read_text())
        assert not alive(pid), f"the shell on {host} survived"
    assert marked(f"sleep {marker}") == []


def test_ctrl_c_stops_the_remote_commands_and_the_run_is_interrupted(fws):
    marker = "3012.5"
    name = fws.write(f"""\
        step hang "Hang on {{{{host}}}}" on ["web1", "web2", "web3"] {{
          run "{hanging(marker)}"
        }}
        """)
    proc = fws.start("run", name)
    try:
        pids = [int(wait_for_file(fws.host_file(h, "pid"), f"{h}'s command"))
                for h in ("web1", "web2", "web3")]
        wait_for(lambda: len(marked(f"sleep {marker}")) == 3, what="the three sleeps")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert [p for p in pids if alive(p)] == []
    assert marked(f"sleep {marker}") == []
    [run_dir] = sorted((fws.root / ".runbook" / "runs").iterdir())
    records = read_transcript(run_dir)
    assert finished(records)["status"] == "interrupted"
    assert fws.runbook("verify", run_dir.name).exit_code == 0


# ---------------------------------------------------------------------- secrets and injection


def test_a_secret_in_env_never_shows_in_the_hosts_process_table(fws):
    canary = f"CANARY-fleet-{uuid.uuid4().hex[:12]}"
    name = fws.write(f"""\
        secret token from env "FLEET_CANARY"
        step use "Use the token on {{{{host}}}}" on ["web1", "web2"] {{
          env {{ T = token }}
          run "printf %s \\"$T\\" > {HOST_DIR}/proof"
          run "touch {HOST_DIR}/ready; {WAIT_FOR_GO}; echo token is $T"
        }}
        """)
    proc = fws.start("run", name, env={"FLEET_CANARY": canary})
    try:
        for host in ("web1", "web2"):
            wait_for(lambda h=host: fws.host_file(h, "ready").exists(), what=f"{host} ready")
        # Both commands run on their hosts now, with the secret in their environment.
        assert marked(canary) == []
        for host in ("web1", "web2"):
            fws.host_file(host, "go").touch()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    for host in ("web1", "web2"):
        assert fws.host_file(host, "proof").read_text() == canary  # it did arrive
    [run_dir] = sorted((fws.root / ".runbook" / "runs").iterdir())
    assert canary not in out + err
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    assert "token is ***" in out


HOSTILE = [
    "1; touch $FLEET_ROOT/$FLEET_HOST/pwned",
    "$(touch $FLEET_ROOT/$FLEET_HOST/pwned)",
    "`touch $FLEET_ROOT/$FLEET_HOST/pwned`",
    "x' ; touch $FLEET_ROOT/$FLEET_HOST/pwned; echo '",
    'x" ; touch $FLEET_ROOT/$FLEET_HOST/pwned; echo "',
    "a\nb | touch $FLEET_ROOT/$FLEET_HOST/pwned",
]


@pytest.mark.parametrize("version", HOSTILE)
def test_a_hostile_param_reaches_each_host_as_one_value(fws, version):
    name = fws.write(f"""\
        param version: string = "2"
        step deploy "Deploy on {{{{host}}}}" on ["web1", "web2"] {{
          run "printf '%s' {{{{version}}}} > {HOST_DIR}/version"
        }}
        """)
    result = fws.run(name, "--param", f"version={version}")
    assert result.exit_code == 0, result.output
    for host in ("web1", "web2"):
        assert fws.host_file(host, "version").read_text() == version
        assert not fws.host_file(host, "pwned").exists()


@pytest.mark.parametrize("hostile", [
    "-oProxyCommand=touch /tmp/fleet-pwned",
    "web1;touch /tmp/fleet-pwned",
    "web1 web2",
    "$(touch /tmp/fleet-pwned)",
])
def test_a_hostile_host_name_from_a_param_is_refused_never_run(fws, hostile):
    evidence = Path("/tmp/fleet-pwned")
    evidence.unlink(missing_ok=True)
    before = fws.fleet.accepted()
    name = fws.write("""\
        param where: string = "web1"
        step touch_it "Touch {{host}}" on where {
          run "echo reached {{host}}"
        }
        """)
    result = fws.run(name, "--param", f"where={hostile}")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [end] = events(result.records(), "step_finished")
    assert end["status"] == "failed"
    assert "host name" in end["reason"] or "not a host" in end["reason"], end["reason"]
    assert not evidence.exists()
    assert fws.fleet.accepted() == before


def test_the_host_name_in_a_command_is_a_plain_word(fws):
    # `host` interpolated where a shell would split or expand it still gives one word.
    name = fws.write(f"""\
        targets "inventory.yaml"
        step show "Show {{{{host}}}}" on "canary" {{
          run "printf '<%s>' {{{{host}}}} > {HOST_DIR}/shown"
        }}
        """)
    assert fws.run(name).exit_code == 0
    assert fws.host_file("web2", "shown").read_text() == "<web2>"


# ---------------------------------------------------------------------- kill -9 and resume


def test_resume_after_kill_9_mid_batch_runs_only_the_hosts_that_had_not_finished(fws):
    # web3 hangs until `go` exists; its batch mate web4 finishes; then runbook is killed.
    hang_on_web3 = f"echo $$ > {HOST_DIR}/pid; {WAIT_FOR_GO}; test -e {HOST_DIR}/go"
    name = fws.write(f"""\
        targets "inventory.yaml"
        step deploy "Deploy {{{{host}}}}" on "web" {{
          batch 2
          run "{log_line('deployed-{{host}}')}"
          run "if [ {{{{host}}}} = web3 ]; then {hang_on_web3}; fi"
        }}
        """)
    proc = fws.start("run", name)
    runs = fws.root / ".runbook" / "runs"

    def web4_finished() -> bool:
        dirs = sorted(runs.iterdir()) if runs.exists() else []
        return bool(dirs) and any(
            r["event"] == "step_finished" and r["step"] == "deploy[web4]"
            for r in read_transcript(dirs[0]))

    try:
        pid = int(wait_for_file(fws.host_file("web3", "pid"), "web3's command"))
        wait_for(web4_finished, timeout=60, what="web4 to finish")
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # Its stdin closed with runbook: the command on web3 is stopped by the remote side.
    # The whole group, not only its shell: resume refuses while any member lives.
    wait_for(lambda: not group_alive(pid), timeout=30, what="web3's command to be stopped")
    [run_dir] = sorted(runs.iterdir())
    assert not events(read_transcript(run_dir), "run_finished")

    fws.host_file("web3", "go").touch()
    result = fws.runbook("resume", run_dir.name)
    assert result.exit_code == 0, result.output
    for host in ("web1", "web2", "web4", "web5"):
        assert fws.log(host) == [f"deployed-{host}"], host
    assert fws.log("web3") == ["deployed-web3", "deployed-web3"]
    records = read_transcript(run_dir)
    [resumed] = events(records, "run_resumed")
    processes = resumed["lock_takeover"]["processes"]
    assert any(p.get("host") == "ssh:web3" for p in processes), processes
    after = records.index(resumed)
    rerun = [r["step"] for r in records[after:] if r["event"] == "step_started"]
    assert rerun == ["deploy[web3]", "deploy[web5]"]
    assert finished(records)["status"] == "succeeded"
    assert fws.runbook("verify", run_dir.name).exit_code == 0


# ---------------------------------------------------------------------- --limit and --from


def deploy_all() -> str:
    return f"""\
        targets "inventory.yaml"
        step deploy "Deploy {{{{host}}}}" on "web" {{
          batch 2
          run "{log_line('deployed-{{host}}')}"
          run "test {{{{host}}}} != web3 || test -e {HOST_DIR}/ok"
        }}
        """


def test_limit_narrows_the_hosts_of_the_run(fws):
    name = fws.write(deploy_all())
    result = fws.run(name, "--limit", "web:!canary")
    records = result.records()
    [started] = events(records, "hosts_started")
    assert started["hosts"] == ["web1", "web3", "web4", "web5"]
    assert fws.log("web2") == []
    assert events(records, "run_started")[0]["limit"] == "web:!canary"


def test_a_limit_that_matches_nothing_known_is_refused(fws):
    name = fws.write(deploy_all())
    result = fws.run(name, "--limit", "web9")
    assert result.exit_code == 2, result.output
    assert "web9" in result.stderr and "Traceback" not in result.output
    assert result.run_dirs() == []


def test_resume_keeps_the_limit_of_the_run(fws):
    name = fws.write(deploy_all())
    failed = fws.run(name, "--limit", "web1,web3")
    assert failed.exit_code == 1, failed.output
    fws.host_file("web3", "ok").touch()
    run_id = failed.run_dirs()[0].name
    resumed = fws.runbook("resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert fws.log("web1") == ["deployed-web1"]
    assert fws.log("web3") == ["deployed-web3", "deployed-web3"]
    for host in ("web2", "web4", "web5"):
        assert fws.log(host) == [], host


def test_from_an_instance_starts_at_that_host(fws):
    fws.host_file("web3", "ok").touch()
    name = fws.write(deploy_all())
    result = fws.run(name, "--from", "deploy[web3]")
    assert result.exit_code == 0, result.output
    assert fws.log("web1") == [] and fws.log("web2") == []
    for host in ("web3", "web4", "web5"):
        assert fws.log(host) == [f"deployed-{host}"]
    records = result.records()
    skipped = [r["step"] for r in events(records, "step_finished") if r["status"] == "skipped"]
    assert skipped == ["deploy[web1]", "deploy[web2]"]


def test_from_an_unknown_host_names_the_instances(fws):
    name = fws.write(deploy_all())
    result = fws.run(name, "--from", "deploy[web9]")
    assert result.exit_code == 2, result.output
    assert "deploy[web1]" in result.stderr
    assert result.run_dirs() == []


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_an_ssh_config_that_is_not_there_is_refused_by_its_name(fws, how):
    name = fws.write(deploy_all())
    missing = str(fws.root / "no_such_config")
    if how == "flag":
        result = fws.run(name, "--ssh-config", missing)
        assert f"--ssh-config {missing}: no such file" in result.stderr
    else:
        result = fws.run(name, env={"RUNBOOK_SSH_CONFIG": missing})
        assert f"RUNBOOK_SSH_CONFIG={missing}: no such file" in result.stderr
    assert result.exit_code == 2, result.output
    assert result.run_dirs() == []


def test_a_stale_ssh_config_does_not_stop_a_runbook_without_hosts(fws):
    name = fws.write('step here "Here" { run "true" }\n')
    result = fws.run(name, env={"RUNBOOK_SSH_CONFIG": str(fws.root / "no_such_config")})
    assert result.exit_code == 0, result.output
