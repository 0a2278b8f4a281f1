"""Gates and confirms (LANGUAGE.md §6.3): approvals by flag count only where the rules say
so; without a terminal and a quorum the run pauses (exit 3) and says how to go on."""

from conftest import OPERATOR, events, finished, read_transcript, run_in_terminal


def approvals(records) -> list[tuple[str, str, str]]:
    return [(r["gate"], r["approver"], r["method"]) for r in events(records, "gate_approved")]


def test_approvals_by_flag_meet_the_quorum(ws):
    result = ws.run("gate_quorum", "--approve", "approve_prod=alice",
                    "--approve", "approve_prod=bob")
    assert result.exit_code == 0, result.output
    assert (ws.root / "released.txt").exists()
    records = result.records()
    assert approvals(records) == [("approve_prod", "alice", "flag"),
                                  ("approve_prod", "bob", "flag")]
    assert "✓ approved by alice (flag)" in result.stdout


def test_without_a_quorum_the_run_pauses_and_says_how_to_go_on(ws):
    result = ws.run("gate_quorum", "--approve", "approve_prod=alice")
    assert result.exit_code == 3
    assert (ws.root / "prepared.txt").exists()
    assert not (ws.root / "released.txt").exists()
    assert not (ws.root / "finally.txt").exists()  # a paused run has not ended
    run_id = result.run_dirs()[0].name
    assert f"runbook approve {run_id} approve_prod --as NAME" in result.stdout
    assert f"runbook resume {run_id}" in result.stdout
    assert "⏸ waiting at gate approve_prod: 1 more approval needed" in result.stdout
    records = result.records()
    waiting = events(records, "gate_waiting")[0]
    assert (waiting["gate"], waiting["approved"], waiting["require"]) == \
        ("approve_prod", ["alice"], 2)
    assert (finished(records)["status"], finished(records)["exit_code"]) == ("paused", 3)


def test_the_commands_a_pause_prints_work_as_printed_with_a_transcript_dir(ws):
    # The run lives outside the working directory's store: its id alone would not find it.
    result = ws.run("gate_quorum", "--approve", "approve_prod=alice",
                    "--transcript-dir", str(ws.root / "elsewhere"))
    assert result.exit_code == 3, result.output
    printed = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].split()
               for line in result.stdout.splitlines()
               if line.strip().startswith(("approve:", "then:"))}
    approve = [word for word in printed["approve"] if word != "[--reason" and word != "TEXT]"]
    approve[approve.index("NAME")] = "bob"
    approved = ws.runbook(*approve[1:])
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.splitlines()[-1].split(": ", 1)[1].split() == printed["then"]
    resumed = ws.runbook(*printed["then"][1:])
    assert resumed.exit_code == 0, resumed.output
    assert (ws.root / "released.txt").exists()


def test_names_outside_approvers_and_repeated_names_do_not_count(ws):
    result = ws.run("gate_quorum", "--approve", "approve_prod=mallory",
                    "--approve", "approve_prod=alice", "--approve", "approve_prod=alice")
    assert result.exit_code == 3
    assert approvals(result.records()) == [("approve_prod", "alice", "flag")]
    assert ("--approve ignored: 'mallory' is not an approver of gate approve_prod "
            "(approvers: alice, bob, carol)") in result.stdout
    assert "--approve ignored: 'alice' has already approved gate approve_prod" in result.stdout


def test_the_operator_does_not_count_under_self_approval_false(ws):
    result = ws.run("gate_self", "--as", "alice", "--approve", "review")
    assert result.exit_code == 3
    assert not events(result.records(), "gate_approved")
    assert ("--approve ignored: 'alice' started this run and gate review has self_approval "
            "false") in result.stdout
    assert not (ws.root / "released.txt").exists()


def test_someone_else_approves_under_self_approval_false(ws):
    result = ws.run("gate_self", "--as", "alice", "--approve", "review=bob")
    assert result.exit_code == 0, result.output
    assert approvals(result.records()) == [("review", "bob", "flag")]


def test_approve_without_a_name_approves_as_the_operator(ws):
    result = ws.run("gate_anyone", "--approve", "go")
    assert result.exit_code == 0, result.output
    assert approvals(result.records()) == [("go", OPERATOR, "flag")]


def test_approving_an_unknown_gate_is_a_usage_error(ws):
    result = ws.run("gate_anyone", "--approve", "og")
    assert result.exit_code == 2
    assert "runbook: error: --approve og: no gate named 'og'" in result.stderr
    assert not (ws.root / ".runbook").exists()


def test_a_rejection_at_the_terminal_ends_the_run_as_rejected(ws):
    code, output = run_in_terminal(ws, "run", ws.add("gate_quorum"),
                                   answers="alice\nr\nnot today\n")
    assert code == 4, output
    assert "run rejected (exit 4)" in output
    assert not (ws.root / "released.txt").exists()
    assert (ws.root / "finally.txt").exists()  # a rejected run has ended
    (run_dir,) = list((ws.root / ".runbook" / "runs").iterdir())
    records = read_transcript(run_dir)
    rejected = events(records, "gate_rejected")[0]
    assert (rejected["approver"], rejected["method"], rejected["reason"]) == \
        ("alice", "terminal", "not today")
    assert finished(records)["status"] == "rejected"


def test_confirm_without_a_terminal_fails_naming_yes(ws):
    result = ws.run("confirm_release")
    assert result.exit_code == 1
    assert "no terminal to ask on; pass --yes to answer yes" in result.stdout
    assert not (ws.root / "released.txt").exists()


def test_confirm_with_yes_passes_and_is_recorded(ws):
    result = ws.run("confirm_release", "--yes")
    assert result.exit_code == 0, result.output
    assert (ws.root / "released.txt").exists()
    answered = events(result.records(), "confirm_answered")[0]
    assert (answered["step"], answered["text"], answered["answer"], answered["method"]) == \
        ("release", "Release to production now?", "yes", "flag")
    assert "? Release to production now? yes (--yes)" in result.stdout


def test_end_of_input_at_a_gate_prompt_pauses_with_the_approvals_so_far(ws):
    code, output = run_in_terminal(ws, "run", ws.add("gate_quorum"),
                                   answers="alice\na\nok\n\x04")
    assert code == 3, output
    assert "the terminal closed" in output
    assert "waiting at gate approve_prod: 1 more approval needed" in output
    assert "internal error" not in output
    records = read_transcript(sorted((ws.root / ".runbook" / "runs").iterdir())[-1])
    assert [r["approver"] for r in events(records, "gate_approved")] == ["alice"]
    assert events(records, "gate_waiting")[-1]["approved"] == ["alice"]
    assert finished(records)["status"] == "paused"
