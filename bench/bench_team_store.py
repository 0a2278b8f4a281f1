"""Per-step overhead of recording a run through the store seam: the team store beside the
local store, as the engine drives them.

    python bench/bench_team_store.py [--steps 300] [--rounds 3]

A step is what the interpreter records for one command, through `RunStore` and `RunWriter`
exactly as the engine calls them: `sync` (the durability point before a step), step_started,
command_started, the two output logs (a line of stdout, stderr empty), the run lock told of
the command's process group and of its end, command_finished, step_finished. The local store
is a `.runbook/runs` directory with its flock; the team store a throwaway PostgreSQL cluster
on 127.0.0.1 with fsync ON, reached over TCP with SCRAM, its syncs synchronous commits. No
command runs: what is measured is what the store adds to a step. Prints the median and mean
wall time per step in milliseconds, and the team store's difference to the local one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pgcluster import start_cluster, store_database  # noqa: E402

from runbook_lang.store import LockKey  # noqa: E402
from runbook_lang.store.files import LocalStore, new_run_id  # noqa: E402
from runbook_lang.store.postgres import PostgresStore  # noqa: E402

SNAPSHOT = b'runbook "Bench" {}\n'
TAIL = "x" * 200


def one_step(writer, lock, step: int) -> None:
    """What the engine records for a step with one command."""
    writer.sync()
    name = f"step-{step}"
    writer.append("step_started", step=name, title=name, attempt=1)
    started = writer.append("command_started", step=name, command="echo hi", cwd=".")
    out, out_name = writer.output(started["seq"], name, "stdout")
    err, _ = writer.output(started["seq"], name, "stderr")
    group = {"pgid": 100000 + step, "start": str(step), "host": "local"}
    lock.note_process(group)
    out.write(b"hi\n")
    out.close()
    err.close()
    lock.clear_process(group)
    writer.append("command_finished", step=name, command="echo hi", cwd=".", exit_code=0,
                  duration_ms=1, stdout={"bytes": 3, "sha256": "0" * 64, "tail": TAIL,
                                         "log": out_name}, log=out_name)
    writer.append("step_finished", step=name, title=name, attempt=1, status="succeeded",
                  reason="", duration_ms=1)


def bench(store, steps: int) -> list[float]:
    run_id = new_run_id()
    key = LockKey(f"/bench/{run_id}.runbook", None, "bench.runbook", f"bench/{run_id}")
    lock = store.lock(key, {"run_id": run_id, "user": "bench", "host": "bench"})
    writer = store.create(run_id, SNAPSHOT, lambda text: text)
    writer.append("run_started", sha256=hashlib.sha256(SNAPSHOT).hexdigest())
    samples = []
    for step in range(steps):
        start = time.perf_counter()
        one_step(writer, lock, step)
        samples.append(time.perf_counter() - start)
    writer.close()
    lock.release()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cluster = start_cluster(fsync=True)
    results: dict[str, list[float]] = {}
    try:
        store_database(cluster, "bench", {"runbook_runner": ("runner",)})
        with tempfile.TemporaryDirectory(prefix="rb-bench-team-") as tmp:
            os.environ["RUNBOOK_LOCK_DIR"] = str(Path(tmp) / "locks")
            local = LocalStore(Path(tmp) / "runs")
            team = PostgresStore(cluster.url("runner", "bench"))
            for _ in range(args.rounds):
                results.setdefault("local store", []).extend(bench(local, args.steps))
                results.setdefault("team store", []).extend(bench(team, args.steps))
            team.close()
    finally:
        cluster.stop()
    base = statistics.median(results["local store"])
    print(f"per step ({args.steps} steps x {args.rounds} rounds, fsync on)")
    print(f"{'':14} {'median ms':>10} {'mean ms':>10} {'vs local':>10}")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:14} {median * 1000:10.3f} {statistics.fmean(samples) * 1000:10.3f} "
              f"{(median - base) * 1000:+10.3f}")


if __name__ == "__main__":
    main()
