"""Run locks, process groups and connecting to a team store (LANGUAGE.md §6.5, §12)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgcluster import password, require_psycopg
from pgruns import refusal

from runbook_lang.errors import LockBusy, StoreError
from runbook_lang.store.pg import PgStore, lock_key, stable_id
from runbook_lang.store.pg.locks import open_processes, process_ended, record_process

psycopg = require_psycopg()


def test_two_sessions_race_for_one_lock_and_exactly_one_wins(pg_store):
    stores = [PgStore.open(pg_store(role)) for role in ("runner", "alice") * 3]
    barrier = threading.Barrier(len(stores))
    won, refused = [], []

    def race(index: int, store: PgStore) -> None:
        barrier.wait()
        try:
            store.lock("deploy.runbook", "production", f"run-{index}",
                       {"user": f"user-{index}", "host": f"host-{index}", "pid": index})
            won.append(index)
        except LockBusy as busy:
            refused.append(busy)

    threads = [threading.Thread(target=race, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(won) == 1 and len(refused) == len(stores) - 1
        winner = won[0]
        for busy in refused:
            assert busy.holder["run_id"] == f"run-{winner}"
            assert f"run run-{winner} by user-{winner}" in busy.describe()
            assert f"on host-{winner}" in busy.describe()
    finally:
        for store in stores:
            store.close()


def test_the_lock_is_per_runbook_and_environment(pg_as):
    runner = pg_as("runner")
    runner.lock("deploy.runbook", "production", "r1", {"user": "u"})
    pg_as("alice").lock("deploy.runbook", "staging", "r2", {"user": "u"})
    pg_as("alice").lock("other.runbook", "production", "r3", {"user": "u"})
    pg_as("alice").lock("deploy.runbook", None, "r4", {"user": "u"})
    with pytest.raises(LockBusy):
        pg_as("alice").lock("deploy.runbook", "production", "r5", {"user": "u"})
    with pytest.raises(LockBusy):  # one session never holds one lock twice
        runner.lock("deploy.runbook", "production", "r6", {"user": "u"})


def test_a_released_lock_can_be_taken_again(pg_as):
    lock = pg_as("runner").lock("deploy.runbook", "production", "r1", {"user": "u"})
    lock.release()
    lock.release()
    again = pg_as("alice").lock("deploy.runbook", "production", "r2", {"user": "u"})
    assert again.takeover is None  # a clean release leaves no stale holder behind


def test_a_killed_session_frees_its_lock(pg_cluster, pg_as):
    holder = pg_as("runner")
    holder.lock("deploy.runbook", "production", "run-killed",
                {"user": "runner", "host": "host-a", "pid": 4242})
    with pytest.raises(LockBusy) as busy:
        pg_as("alice").lock("deploy.runbook", "production", "run-next", {"user": "alice"})
    assert "run run-killed by runner, pid 4242 on host-a" in busy.value.describe()
    backend = holder.conn.info.backend_pid
    with pg_cluster.admin() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (backend,)).fetchone() == (True,)
    lock = pg_as("alice").lock("deploy.runbook", "production", "run-next", {"user": "alice"})
    assert lock.takeover is not None
    assert (lock.takeover["pid"], lock.takeover["role"]) == (4242, "runner")
    with pytest.raises(StoreError, match="lost the connection|connection"):
        holder.runs()


def test_process_groups_of_a_run_are_seen_from_another_machine(pg_as, pg_paused):
    runner = pg_as("runner")
    key = lock_key("deploy.runbook", "production")
    first = record_process(runner.conn, pg_paused, key, {"pgid": 4321, "start": "98765",
                                                      "host": "host-a"})
    record_process(runner.conn, pg_paused, key, {"pgid": 4400, "start": "98800", "host": "host-a"})
    process_ended(runner.conn, first)
    seen = open_processes(pg_as("alice").conn, key)
    assert [(p["run_id"], p["host"], p["pgid"], p["start"]) for p in seen] == [
        (pg_paused, "host-a", 4400, "98800")]
    with pytest.raises(psycopg.Error, match="only ever gets its end"):
        runner.conn.execute("UPDATE runbook.processes SET ended = now() WHERE id = %s", (first,))


def test_lock_keys_and_stable_ids(tmp_path):
    assert lock_key("a", None) != lock_key("a", "")
    assert lock_key("a", "b") == lock_key("a", "b") != lock_key("a", "c")
    assert -(2 ** 63) <= lock_key("x", "y") < 2 ** 63
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "ops").mkdir()
    runbook = tmp_path / "repo" / "ops" / "deploy.runbook"
    assert stable_id(runbook) == "ops/deploy.runbook"
    assert stable_id(runbook, "deploy-web") == "deploy-web"


# ---------------------------------------------------------------------- connecting


def test_an_unreachable_store_is_a_clear_error_without_the_password():
    from conftest import closed_port

    port = closed_port()
    url = f"postgresql://alice:{password('alice')}@127.0.0.1:{port}/db"
    with pytest.raises(StoreError) as error:
        PgStore.open(url, timeout=2)
    message = refusal(error)
    assert message.startswith(f"cannot connect to the store postgresql://alice@127.0.0.1:{port}"
                              f"/db: connection to server at \"127.0.0.1\", port {port} failed")
    assert password("alice") not in message
    assert "\n" not in message


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=12,
                      max_size=30))
def test_a_refused_password_never_appears_in_the_message(pg_cluster, secret):
    from urllib.parse import quote

    url = f"postgresql://alice:{quote(secret, safe='')}@127.0.0.1:{pg_cluster.port}/postgres"
    with pytest.raises(StoreError) as error:
        PgStore.open(url, timeout=2)
    assert secret not in refusal(error)
    assert quote(secret, safe="") not in refusal(error)
    assert "password authentication failed for user" in refusal(error)


def test_a_server_that_never_answers_is_given_up_on():
    """A listening socket that never speaks: libpq's connect_timeout ends the wait."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(StoreError) as error:
            PgStore.open(f"postgresql://alice:{password('alice')}@127.0.0.1:{port}/db",
                         timeout=2)
    assert "timeout expired" in refusal(error)
    assert password("alice") not in refusal(error)


@pytest.mark.parametrize("url", [
    "postgresql://alice:s3cret-pw@127.0.0.1:notaport/db",
    "postgresql://alice:s3cret-pw@127.0.0.1:5432/db?sslmode=sometimes",
    "postgresql://alice:s3cret%2Dpw@[::1/db",
])
def test_a_malformed_url_is_a_clear_error_without_the_password(url):
    with pytest.raises(StoreError) as error:
        PgStore.open(url, timeout=2)
    assert refusal(error).startswith("cannot connect to the store ")
    assert "s3cret" not in refusal(error)
