"""Deciding on gates in a team store: who may, decided by the database (LANGUAGE.md §12).

The approver is the role of the session that calls `runbook.approve`, never a name the
client sends; the gate's rules come from the run's own `gate_waiting` record.
"""

from __future__ import annotations

import threading

import pytest
from pgcluster import OWNER, require_psycopg
from pgruns import GATE, refusal, start_run, wait_at_gate

from runbook_lang.errors import StoreError
from runbook_lang.store.pg import PgStore

psycopg = require_psycopg()


def test_alice_and_bob_approve_from_their_own_connections(pg_as, pg_paused):
    alice, bob = pg_as("alice"), pg_as("bob")
    first = alice.approve(pg_paused, GATE, reason="looks good", host="alice-laptop")
    second = bob.approve(pg_paused, GATE, reject=False, reason="agreed")
    assert (first.approver, first.decision, first.method) == ("alice", "approve",
                                                              "approve-command")
    assert second.approver == "bob"
    assert [(d.approver, d.reason) for d in pg_as("runner").decisions(pg_paused, GATE)] == [
        ("alice", "looks good"), ("bob", "agreed")]


def test_the_approver_is_the_session_role_not_a_name_the_client_sends(pg_as, pg_store,
                                                                        pg_paused):
    runner = pg_as("runner")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        runner.conn.execute("INSERT INTO runbook.decisions (run_id, gate, wait_id, decision, "
                            "reason, decided, method, approver) VALUES (%s, %s, 1, 'approve', "
                            "'', now(), 'approve-command', 'alice')", (pg_paused, GATE))
    with pytest.raises(StoreError, match="role runner may not decide .* permission denied"):
        runner.approve(pg_paused, GATE)
    # Even the owner, who may insert by hand, cannot write a decision in alice's name.
    owner = pg_as(OWNER)
    with pytest.raises(psycopg.Error, match=f"role {OWNER} may not decide on gates"):
        owner.conn.execute("INSERT INTO runbook.decisions (run_id, gate, decision, reason, "
                           "method, approver) VALUES (%s, %s, 'approve', '', 'approve-command', "
                           "'alice')", (pg_paused, GATE))
    # SET ROLE changes current_user, not who logged in.
    with PgStore.open(pg_store("alice")) as alice:
        alice.conn.execute("SET ROLE runbook_approver")
        assert alice.approve(pg_paused, GATE).approver == "alice"
    assert [d.approver for d in runner.decisions(pg_paused)] == ["alice"]


def test_a_role_not_among_the_approvers_is_refused(pg_as, pg_paused):
    with pytest.raises(StoreError) as error:
        pg_as("carol").approve(pg_paused, GATE)
    assert refusal(error) == ("refused by the store: role carol may not decide on gate "
                              "approve_prod (approvers: alice, bob)")


def test_a_gate_without_approvers_admits_any_approver_member(pg_as):
    writer = start_run(pg_as("runner"))
    wait_at_gate(writer, approvers=None, require=1)
    assert pg_as("carol").approve(writer.run_id, GATE).approver == "carol"
    with pytest.raises(StoreError, match="not a member of runbook_approver"):
        pg_as(OWNER).approve(writer.run_id, GATE)


def test_the_operator_is_refused_under_self_approval_false(pg_as):
    # alice starts the run; the record even names someone else as operator: the database
    # goes by the role that created the run.
    writer = start_run(pg_as("alice"), operator="somebody")
    wait_at_gate(writer, self_approval=False, operator="somebody")
    with pytest.raises(StoreError) as error:
        pg_as("alice").approve(writer.run_id, GATE)
    assert refusal(error) == (f"refused by the store: role alice started run {writer.run_id} "
                              "and gate approve_prod has self_approval false")
    assert pg_as("bob").approve(writer.run_id, GATE).approver == "bob"


def test_the_operator_may_approve_when_self_approval_is_allowed(pg_as):
    writer = start_run(pg_as("alice"), operator="alice")
    wait_at_gate(writer, operator="alice")
    assert pg_as("alice").approve(writer.run_id, GATE).approver == "alice"


def test_a_second_vote_is_refused(pg_as, pg_paused):
    pg_as("alice").approve(pg_paused, GATE)
    with pytest.raises(StoreError, match="role alice has already decided on gate approve_prod"):
        pg_as("alice").approve(pg_paused, GATE, reject=True)
    writer = start_run(pg_as("runner"))
    wait_at_gate(writer, approved=["bob"])  # approved on the command line before the pause
    with pytest.raises(StoreError, match="role bob has already decided"):
        pg_as("bob").approve(writer.run_id, GATE)


def test_concurrent_second_votes_count_once(pg_store, pg_paused):
    stores = [PgStore.open(pg_store("alice")) for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(stores))

    def vote(store: PgStore) -> None:
        barrier.wait()
        try:
            store.approve(pg_paused, GATE)
            outcomes.append("recorded")
        except StoreError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=vote, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    assert outcomes.count("recorded") == 1, outcomes
    # The votes took turns on the gate's wait: each later one saw the first.
    assert all("role alice has already decided" in o for o in outcomes if o != "recorded")


def test_a_run_not_waiting_at_that_gate_is_refused(pg_as, pg_paused):
    alice = pg_as("alice")
    with pytest.raises(StoreError, match=f"run {pg_paused} is not waiting at gate other; it waits "
                                         "at gate approve_prod"):
        alice.approve(pg_paused, "other")
    writer = pg_as("runner").reopen(pg_paused)
    writer.append("run_resumed", operator={"user": "runner", "host": "h"}, torn=None)
    writer.append("gate_approved", gate=GATE, approver="bob", method="flag", reason="",
                  host="h")
    writer.append("step_finished", step=GATE, title="Approve", attempt=1, status="succeeded",
                  reason="", duration_ms=1)
    with pytest.raises(StoreError, match=f"run {pg_paused} is not waiting at a gate "
                                         r"\(it is running\)"):
        alice.approve(pg_paused, GATE)
    with pytest.raises(StoreError, match="there is no run 'nope'|there is no run nope"):
        alice.approve("nope", GATE)


def test_a_run_that_ended_waits_no_more(pg_as, pg_paused):
    writer = pg_as("runner").reopen(pg_paused)
    writer.append("run_resumed", operator={"user": "runner", "host": "h"}, torn=None)
    writer.append("run_finished", status="failed", exit_code=1)
    with pytest.raises(StoreError, match="is not waiting at a gate \\(it is failed\\)"):
        pg_as("alice").approve(pg_paused, GATE)


def test_a_timed_out_gate_is_refused(pg_as):
    writer = start_run(pg_as("runner"))
    wait_at_gate(writer, timeout_ms=1)
    pg_as("runner").conn.execute("SELECT pg_sleep(0.05)")
    with pytest.raises(StoreError, match="gate approve_prod of run .* timed out"):
        pg_as("alice").approve(writer.run_id, GATE)


def test_refusals_read_well(pg_as, pg_paused, snapshot):
    """The messages people get, in one place."""
    messages = []
    for role, gate, kwargs in [("carol", GATE, {}), ("alice", "other", {}),
                               ("runner", GATE, {}), ("alice", GATE, {}),
                               ("alice", GATE, {"reject": True})]:
        try:
            pg_as(role).approve(pg_paused, gate, **kwargs)
            messages.append(f"{role}: recorded")
        except StoreError as error:
            messages.append(f"{role}: {error}".replace(pg_paused, "RUN_ID"))
    assert "\n".join(messages) == snapshot
