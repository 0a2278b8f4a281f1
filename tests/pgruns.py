"""Runs in a team store as the engine writes them, for the tests of `runbook_lang.store.pg`.

Fixtures: `pg_as(role)` opens the test database's store as a role (closed after the test),
`runner` is one such session of `runner`, `pg_paused` is a run waiting at a gate.
"""

from __future__ import annotations

import hashlib

import pytest

from runbook_lang.store.files import new_run_id
from runbook_lang.store.pg import PgStore

SNAPSHOT = b'runbook "Deploy" {}\n\nstep one "One" {\n  run "true"\n}\n'
SNAPSHOT_SHA = hashlib.sha256(SNAPSHOT).hexdigest()
GATE = "approve_prod"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start_run(store: PgStore, operator: str = "runner", run_id: str | None = None):
    """A run as the engine starts one: the run row, then run_started, synced."""
    run_id = run_id or new_run_id()
    writer = store.create_run(run_id, "deploy.runbook", "deploy.runbook", SNAPSHOT, "host-a")
    writer.append("run_started", runbook="deploy.runbook", sha256=SNAPSHOT_SHA, title="Deploy",
                  params={"environment": "production"},
                  operator={"user": operator, "host": "host-a"}, version="test",
                  argv=["runbook", "run"], mode="run")
    writer.sync()
    return writer


def wait_at_gate(writer, approvers=("alice", "bob"), require=2, self_approval=True,
                 operator="runner", timeout_ms=None, approved=(), gate=GATE) -> None:
    """Records as the engine writes them when a run pauses at a gate."""
    writer.append("step_started", step=gate, title="Approve", attempt=1)
    writer.append("gate_waiting", gate=gate, approver=None, method=None, reason="needs 2",
                  host="host-a", approvers=list(approvers) if approvers is not None else None,
                  require=require, approved=list(approved), self_approval=self_approval,
                  operator=operator, timeout_ms=timeout_ms)
    writer.append("run_finished", status="paused", exit_code=3, duration_ms=5,
                  failed_step=None)
    writer.sync()


@pytest.fixture
def pg_as(pg_store):
    """Open a store as a role; every store opened is closed after the test."""
    opened: list[PgStore] = []

    def open_as(role: str) -> PgStore:
        store = PgStore.open(pg_store(role))
        opened.append(store)
        return store

    yield open_as
    for store in opened:
        store.close()


@pytest.fixture
def pg_paused(pg_as):
    """A run started by `runner`, waiting at gate approve_prod for 2 of alice and bob."""
    writer = start_run(pg_as("runner"))
    wait_at_gate(writer)
    return writer.run_id


@pytest.fixture
def pg_runner(pg_as) -> PgStore:
    """One `runner` session for the whole test (also across hypothesis examples)."""
    return pg_as("runner")


def refusal(error: pytest.ExceptionInfo) -> str:
    """The message a person reads."""
    return str(error.value)
