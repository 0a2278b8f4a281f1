"""Steps on hosts, through the real `runbook` command against the real test fleet: batches,
the error budget, unreachable hosts, rollback per host, what the transcript says, and the
names a step on hosts can read (LANGUAGE.md §11).
"""

from __future__ import annotations

import json

from conftest import events, finished, read_transcript, step_order
from fleetrun import HOST_DIR, fleet_workspace, log_line  # noqa: F401  (the `fws` fixture)

WEB = ["web1", "web2", "web3", "web4", "web5"]


def rolling(fail_on: str = "", batch: str = "2", max_failures: str = "0",
            policy: str = "rollback") -> str:
    """A rolling deploy of version 2 over the web group; `fail_on` fails its health check."""
    return f"""\
        targets "inventory.yaml"

        step deploy "Deploy 2 to {{{{host}}}}" on "web" {{
          batch {batch}
          max_failures {max_failures}
          on_failure {policy}
          run "cat {HOST_DIR}/version 2>/dev/null || echo 1" into previous
          run "echo 2 > {HOST_DIR}/version; {log_line('deployed-{{host}}')}"
          check "{{{{host}}}} is healthy" {{
            run "test {{{{host}}}} != {fail_on or 'none'}"
          }}
          rollback {{
            run "echo {{{{previous}}}} > {HOST_DIR}/version; {log_line('undone-{{host}}')}"
          }}
        }}
        """


def versions(fws) -> dict[str, str]:
    return {host: fws.host_file(host, "version").read_text().strip()
            for host in WEB if fws.host_file(host, "version").exists()}


# ---------------------------------------------------------------------- the rolling deploy


def test_a_rolling_deploy_runs_every_host_in_batches(fws):
    name = fws.write(rolling())
    result = fws.run(name)
    assert result.exit_code == 0, result.output
    assert versions(fws) == dict.fromkeys(WEB, "2")
    records = result.records()
    [started] = events(records, "hosts_started")
    assert started["hosts"] == WEB
    assert started["batches"] == [["web1", "web2"], ["web3", "web4"], ["web5"]]
    assert [r["hosts"] for r in events(records, "batch_started")] == started["batches"]
    [verdict] = events(records, "hosts_finished")
    assert (verdict["status"], verdict["succeeded"], verdict["failed"]) == \
        ("succeeded", WEB, [])
    assert sorted(step_order(records)) == [f"deploy[{h}]" for h in WEB]
    assert fws.runbook("verify", result.run_dirs()[0].name).exit_code == 0
    # What the operator sees: the batches, each host's lines under its name, the summary.
    assert "batch 1/3: web1, web2" in result.stdout
    assert "deploy[web3] [3/5]" in result.stdout
    assert "✓ deploy: 5 hosts succeeded" in result.stdout


def test_one_failing_host_stops_the_deploy_after_its_batch_and_undoes_the_hosts(fws):
    name = fws.write(rolling(fail_on="web3"))
    result = fws.run(name)
    assert result.exit_code == 1, result.output
    records = result.records()
    end = finished(records)
    assert (end["status"], end["failed_step"]) == ("rolled_back", "deploy")
    # web3's batch finished (web4 too); web5 never started.
    assert "deployed-web5" not in fws.log("web5")
    assert not fws.host_file("web5", "version").exists()
    [verdict] = events(records, "hosts_finished")
    assert verdict["failed"] == ["web3"] and verdict["not_started"] == ["web5"]
    assert verdict["status"] == "failed"
    # Undone on each host that ran, newest batch first, in reverse order within a batch.
    [rollback] = events(records, "rollback_started")
    assert rollback["steps"] == ["deploy[web4]", "deploy[web3]", "deploy[web2]", "deploy[web1]"]
    assert versions(fws) == dict.fromkeys(["web1", "web2", "web3", "web4"], "1")
    for host in ["web1", "web2", "web3", "web4"]:
        assert fws.log(host) == [f"deployed-{host}", f"undone-{host}"]
    assert fws.runbook("verify", result.run_dirs()[0].name).exit_code == 0
    assert "deploy failed — 1 of 5 hosts failed (web3), more than max_failures 0; not " \
        "started: web5" in result.stdout
    assert "deploy[web5] [5/5]  not_started" in result.stdout


def test_batches_start_only_when_the_batch_before_has_finished(fws):
    name = fws.write(rolling(batch="2"))
    records = fws.run(name).records()
    starts = {r["host"]: r["seq"] for r in events(records, "step_started")}
    ends = {r["step"][len("deploy["):-1]: r["seq"] for r in events(records, "step_finished")}
    assert max(ends["web1"], ends["web2"]) < min(starts["web3"], starts["web4"])
    assert max(ends["web3"], ends["web4"]) < starts["web5"]
    assert [r["batch"] for r in events(records, "step_started")] == [1, 1, 2, 2, 3]


def test_the_hosts_of_a_batch_run_at_once(fws):
    # Each host waits (boundedly) for the other to have started: only hosts that run at
    # the same time both get past it.
    meet = (f"touch {HOST_DIR}/here; other=web1; [ $FLEET_HOST = web1 ] && other=web2; "
            "i=0; while [ ! -e $FLEET_ROOT/$other/here ] && [ $i -lt 300 ]; "
            "do sleep 0.1; i=$((i+1)); done; test -e $FLEET_ROOT/$other/here")
    name = fws.write(f"""\
        step meet "Meet" on ["web1", "web2"] {{
          run "{meet}"
        }}
        """)
    result = fws.run(name)
    assert result.exit_code == 0, result.output


def test_forks_1_runs_one_host_at_a_time(fws):
    name = fws.write(rolling(batch="5"))
    records = fws.run(name, "--forks", "1").records()
    order = [(r["event"], r["step"]) for r in records
             if r["event"] in ("step_started", "step_finished")]
    assert order == [(e, f"deploy[{h}]") for h in WEB for e in ("step_started",
                                                                  "step_finished")]


def test_max_failures_by_count(fws):
    failing = """\
        targets "inventory.yaml"
        step check_hosts "Check {{host}}" on "web" {
          max_failures %s
          run "test {{host}} != web2 && test {{host}} != web4"
        }
        """
    name = fws.write(failing % "2")
    tolerated = fws.run(name)
    assert tolerated.exit_code == 0, tolerated.output
    [verdict] = events(tolerated.records(), "hosts_finished")
    assert (verdict["status"], verdict["failed"]) == ("succeeded", ["web2", "web4"])
    assert "⚠ check_hosts: 2 of 5 hosts failed (web2, web4), within max_failures 2: " \
        "tolerated" in tolerated.stdout
    assert "check_hosts[web2] [2/5]  tolerated" in tolerated.stdout

    fws.write(failing % "1")
    failed = fws.run(name)
    assert failed.exit_code == 1
    assert finished(read_transcript(failed.run_dirs()[-1]))["status"] == "failed"


def test_max_failures_by_percentage(fws):
    failing = """\
        targets "inventory.yaml"
        step check_hosts "Check {{host}}" on "web" {
          max_failures "%s"
          run "test {{host}} != web2 && test {{host}} != web4"
        }
        """
    name = fws.write(failing % "40%")  # 2 of 5 hosts may fail
    assert fws.run(name).exit_code == 0
    fws.write(failing % "39%")  # 1.95 hosts: 2 failures are more
    result = fws.run(name)
    assert result.exit_code == 1
    assert "more than max_failures 39% (1 of 5 hosts)" in result.stdout


def test_a_batch_given_as_a_percentage(fws):
    name = fws.write(rolling(batch='"40%"'))  # 2 hosts of 5
    records = fws.run(name).records()
    [started] = events(records, "hosts_started")
    assert started["batches"] == [["web1", "web2"], ["web3", "web4"], ["web5"]]


# ---------------------------------------------------------------------- unreachable hosts


def test_an_unreachable_host_is_a_failed_instance(fws):
    name = fws.write("""\
        targets "inventory.yaml"
        step ping "Ping {{host}}" on ["web1", "down1"] {
          run "echo pong from {{host}}"
        }
        """)
    result = fws.run(name)
    assert result.exit_code == 1
    records = result.records()
    [down] = [r for r in events(records, "step_finished") if r["step"] == "ping[down1]"]
    assert down["status"] == "failed" and down["unreachable"] is True
    assert down["reason"].startswith("unreachable: cannot connect to down1: connection refused")
    [verdict] = events(records, "hosts_finished")
    assert verdict["unreachable"] == ["down1"] and verdict["succeeded"] == ["web1"]
    assert "1 of 2 hosts failed (down1: unreachable)" in result.stdout


def test_an_unreachable_host_is_not_undone(fws):
    name = fws.write(f"""\
        targets "inventory.yaml"
        step deploy "Deploy" on ["web1", "nowhere1"] {{
          on_failure rollback
          run "{log_line('did-{{host}}')}"
          rollback {{ run "{log_line('undo-{{host}}')}" }}
        }}
        """)
    records = fws.run(name).records()
    [rollback] = events(records, "rollback_started")
    assert rollback["steps"] == ["deploy[web1]"]
    assert finished(records)["status"] == "rolled_back"


# ---------------------------------------------------------------------- failure mid-batch


def test_a_host_failing_mid_batch_undoes_the_hosts_that_finished(fws):
    # web2 fails at once; web1 and web3 of the same batch finish their work; web4 and
    # web5 (the next batch) never start.
    name = fws.write(f"""\
        targets "inventory.yaml"
        step deploy "Deploy {{{{host}}}}" on "web" {{
          batch 3
          on_failure rollback
          run "test {{{{host}}}} != web2 && {log_line('done-{{host}}')}"
          rollback {{ run "{log_line('undo-{{host}}')}" }}
        }}
        """)
    result = fws.run(name)
    records = result.records()
    [rollback] = events(records, "rollback_started")
    assert rollback["steps"] == ["deploy[web3]", "deploy[web2]", "deploy[web1]"]
    assert fws.log("web1") == ["done-web1", "undo-web1"]
    assert fws.log("web3") == ["done-web3", "undo-web3"]
    assert fws.log("web4") == [] and fws.log("web5") == []
    assert finished(records)["status"] == "rolled_back"


def test_a_later_step_failing_undoes_every_host_of_an_earlier_step(fws):
    name = fws.write(f"""\
        targets "inventory.yaml"
        on_failure rollback
        step deploy "Deploy {{{{host}}}}" on "web" {{
          batch 2
          run "{log_line('done-{{host}}')}"
          rollback {{ run "{log_line('undo-{{host}}')}" }}
        }}
        step smoke "Smoke test" {{
          fail "the smoke test failed"
        }}
        """)
    records = fws.run(name).records()
    [rollback] = events(records, "rollback_started")
    assert rollback["steps"] == [f"deploy[{h}]" for h in reversed(WEB)]
    for host in WEB:
        assert fws.log(host) == [f"done-{host}", f"undo-{host}"]


# ---------------------------------------------------------------------- names on hosts


def test_host_vars_hostvars_and_groups(fws):
    name = fws.write("""\
        targets "inventory.yaml"
        step show "Show {{host}}" on ["web2", "db1"] {
          set db = hostvars["db1"].tier
          run "echo {{host}} tier={{vars.tier}} groups={{len(groups.web)}} db={{db}}"
        }
        """)
    result = fws.run(name)
    assert result.exit_code == 0, result.output
    assert "    web2 | web2 tier=web groups=5 db=primary" in result.stdout
    assert "    db1 | db1 tier=primary groups=5 db=primary" in result.stdout


def test_what_an_instance_sets_is_its_own_and_its_undos(fws):
    name = fws.write(f"""\
        targets "inventory.yaml"
        step tag "Tag {{{{host}}}}" on ["web1", "web2"] {{
          on_failure rollback
          run "echo tag-$FLEET_HOST" into tag
          set mine = "{{{{tag}}}}-{{{{host}}}}"
          run "test {{{{host}}}} != web2"
          rollback {{ run "{log_line('{{mine}}')}" }}
        }}
        """)
    records = fws.run(name).records()
    assert fws.log("web1") == ["tag-web1-web1"]
    assert fws.log("web2") == ["tag-web2-web2"]
    values = {(r["host"], r["name"]): r["value"] for r in events(records, "variable_set")}
    assert values[("web1", "mine")] == "tag-web1-web1"
    assert values[("web2", "tag")] == "tag-web2"


def test_http_note_and_wait_act_here_run_acts_on_the_host(fws, server):
    name = fws.write(f"""\
        step mixed "Mixed" on ["web1"] {{
          http get "{server.url}/ok"
          note "noted for {{{{host}}}}"
          run "echo $FLEET_HOST"
        }}
        """)
    result = fws.run(name)
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in server.requests] == ["/ok"]
    assert "✎ noted for web1" in result.stdout
    records = result.records()
    [command] = events(records, "command_started")
    assert (command["host"], command["cwd"]) == ("web1", "~")


def test_dry_run_lists_batches_and_commands_without_connecting(fws):
    name = fws.write(rolling())
    before = fws.fleet.accepted()
    result = fws.run(name, "--dry-run", "--output", "json")
    assert result.exit_code == 0, result.output
    assert fws.fleet.accepted() == before
    plan = json.loads(result.stdout)
    header, *instances = plan["steps"]
    assert header["kind"] == "on"
    assert header["attributes"]["batch 1"] == "web1, web2"
    assert header["attributes"]["batch 3"] == "web5"
    assert [i["name"] for i in instances] == [f"deploy[{h}]" for h in WEB]
    assert instances[2]["attributes"]["host"] == "web3 (batch 2)"
    assert instances[2]["actions"][1]["command"].startswith('echo 2 > $FLEET_ROOT')


def test_dry_run_with_fail_at_shows_which_hosts_are_undone(fws):
    name = fws.write(rolling())
    result = fws.run(name, "--dry-run", "--fail-at", "deploy[web3]")
    assert result.exit_code == 0, result.output
    rollback = result.stdout.split("Rollback (if the failure happens as planned):")[1]
    undone = [line.split()[1].rstrip(":") for line in rollback.splitlines()
              if line.strip().startswith("undo ")]
    assert undone == ["deploy[web4]", "deploy[web3]", "deploy[web2]", "deploy[web1]"]
    assert "not started: web5" in result.stdout


def test_the_transcript_names_the_host_of_each_command(fws):
    name = fws.write(rolling())
    result = fws.run(name)
    records = result.records()
    for record in events(records, "command_finished"):
        assert record["host"] == record["step"][len("deploy["):-1]
    logs = sorted(p.name for p in (result.run_dirs()[0] / "output").iterdir())
    assert any("deploy_web3_" in log for log in logs)
    report = fws.runbook("show", result.run_dirs()[0].name)
    assert "deploy[web3]" in report.stdout


def test_lines_of_hosts_running_at_once_never_interleave(fws):
    # Each host writes each line in two pieces with a pause between them: shown as they
    # come, the pieces of the hosts would mix; shown a whole line at a time, they cannot.
    pieces = "for i in 1 2 3 4 5; do printf %s {{host}}-$i-; sleep 0.05; echo end; done"
    name = fws.write(f"""\
        step talk "Talk" on ["web1", "web2", "web3"] {{
          run "{pieces}"
        }}
        """)
    result = fws.run(name)
    assert result.exit_code == 0, result.output
    shown = [line for line in result.stdout.splitlines() if " | " in line]
    assert sorted(shown) == sorted(f"    {h} | {h}-{i}-end" for h in ("web1", "web2", "web3")
                                   for i in range(1, 6))


def test_each_host_s_captured_value_is_shown_under_its_own_name(fws):
    name = fws.write("""\
        step tag "Tag" on ["web1", "web2", "web3"] {
          run "echo tag-$FLEET_HOST" into tag
        }
        """)
    result = fws.run(name)
    assert result.exit_code == 0, result.output
    captured = result.stdout.split("Captured:")[1]
    for host in ("web1", "web2", "web3"):
        assert f"    {host} | ↳ tag = tag-{host}" in result.stdout
        assert f"tag[{host}]: tag = tag-{host}" in captured
