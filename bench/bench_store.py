"""What recording a step costs in the team store, against the local file store, same machine.

    python bench/bench_store.py [--steps 300] [--records 4]

A step here is what the interpreter records for one command: `--records` appends (step
started, command started, command finished, step finished) and one sync, the point where
the record must be durable. The local store appends with write(2) and syncs with fsync and
the head file; the team store runs on a throwaway PostgreSQL 15 cluster started by this
script on 127.0.0.1 with fsync ON (unlike the test cluster), reached over TCP with SCRAM,
and syncs with a synchronous commit. Both write to the same disk.

Policies of the team store's appends: `lazy` (the default: each append commits without
waiting for the disk, sync waits for all of them), `durable` (every append a synchronous
commit) and `batched` (appends wait in memory and go with the sync, in one round trip).
Prints per-step medians and means of wall time in milliseconds, the difference to the local
store, and the CPU time a step costs (this process and the database backend together, the
best round): on a loaded machine the wall time of a store that talks to another process
waits for the scheduler too, the CPU time does not. The target for the integrated store is
within 2 ms a step of the local store.
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

from runbook_lang.store.files import FileRunWriter as TranscriptWriter  # noqa: E402
from runbook_lang.store.files import new_run_id  # noqa: E402
from runbook_lang.store.pg import PgStore  # noqa: E402

SNAPSHOT = b'runbook "Bench" {}\n'
TAIL = "x" * 300  # a command_finished record is a few hundred bytes: tails and digests


def step_records(writer, records: int, step: int) -> None:
    for n in range(records):
        writer.append("command_finished" if n == records - 2 else "step_started",
                      step=f"step-{step}", attempt=1, exit_code=0, tail=TAIL if n else "")


def server_cpu(backend: int | None) -> float:
    """CPU seconds a PostgreSQL backend has used so far (0 when it cannot be read)."""
    if backend is None:
        return 0.0
    try:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_steps(writer, steps: int, records: int, backend: int | None = None) -> list[float]:
    """Per-step wall times (seconds) of `records` appends and a sync. Appends the CPU time
    per step (this process and the database backend together) to CPU[name]."""
    samples = []
    cpu = time.process_time() + server_cpu(backend)
    for step in range(steps):
        start = time.perf_counter()
        step_records(writer, records, step)
        writer.sync()
        samples.append(time.perf_counter() - start)
    CPU.append((time.process_time() + server_cpu(backend) - cpu) / steps)
    return samples


CPU: list[float] = []


def bench_local(work: Path, steps: int, records: int) -> list[float]:
    run_id = new_run_id()
    writer = TranscriptWriter(work / run_id, run_id)
    writer.append("run_started", sha256=hashlib.sha256(SNAPSHOT).hexdigest())
    writer.sync()
    samples = time_steps(writer, steps, records)
    writer.close()
    return samples


def bench_pg(url: str, steps: int, records: int, appends: str) -> list[float]:
    with PgStore.open(url) as store:
        writer = store.create_run(new_run_id(), "bench.runbook", "bench.runbook", SNAPSHOT,
                                  "bench-host", appends=appends)
        writer.append("run_started", sha256=hashlib.sha256(SNAPSHOT).hexdigest())
        writer.sync()
        samples = time_steps(writer, steps, records, store.conn.info.backend_pid)
        writer.close()
    return samples


def bench_parts(url: str, work: Path, count: int) -> list[tuple[str, float]]:
    """Median cost of one append and of one sync alone, each store."""
    out = []
    run_id = new_run_id()
    local = TranscriptWriter(work / run_id, run_id)
    local.append("run_started", sha256="0" * 64)
    with PgStore.open(url) as store:
        remote = store.create_run(new_run_id(), "b", "b", SNAPSHOT, "h")
        remote.append("run_started", sha256=hashlib.sha256(SNAPSHOT).hexdigest())
        for name, writer in (("local", local), ("team (lazy)", remote)):
            appends, syncs = [], []
            for i in range(count):
                start = time.perf_counter()
                writer.append("note", text=TAIL, n=i)
                appends.append(time.perf_counter() - start)
                start = time.perf_counter()
                writer.sync()
                syncs.append(time.perf_counter() - start)
            out.append((f"{name}: one append", statistics.median(appends)))
            out.append((f"{name}: one sync", statistics.median(syncs)))
        remote.close()
    local.close()
    return out


def measure(args, fsync: bool) -> tuple:
    """Per-step samples of each store and the parts, with disk flushes on or off.

    Off: the cluster runs with fsync off and the local store's fsync does nothing, which
    leaves what the software itself costs (the shared disk of a test machine is noisy)."""
    cluster = start_cluster(fsync=fsync)
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    if not fsync:
        os.fsync = os.fdatasync = lambda fd: None
    try:
        store_database(cluster, "bench", {"runbook_runner": ("runner",)})
        url = cluster.url("runner", "bench")
        with tempfile.TemporaryDirectory(prefix="rb-bench-store-") as tmp:
            work = Path(tmp)
            results: dict[str, list[float]] = {}
            cpu: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for name, run in (
                        ("local file store", lambda: bench_local(work, args.steps, args.records)),
                        ("team store, lazy appends",
                         lambda: bench_pg(url, args.steps, args.records, "lazy")),
                        ("team store, durable appends",
                         lambda: bench_pg(url, args.steps, args.records, "durable")),
                        ("team store, batched appends",
                         lambda: bench_pg(url, args.steps, args.records, "batched"))):
                    results.setdefault(name, []).extend(run())
                    cpu.setdefault(name, []).append(CPU.pop())
            parts = bench_parts(url, work, min(args.steps, 200))
    finally:
        os.fsync, os.fdatasync = real_fsync, real_fdatasync
        cluster.stop()
    return results, cpu, parts


def report(title: str, results: dict[str, list[float]], cpu: dict[str, list[float]],
           parts: list[tuple[str, float]]) -> None:
    base = statistics.median(results["local file store"])
    print(title)
    print(f"{'':32} {'median ms':>10} {'mean ms':>10} {'vs local':>10} {'CPU ms':>10}")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:32} {median * 1000:10.3f} {statistics.fmean(samples) * 1000:10.3f} "
              f"{(median - base) * 1000:+10.3f} {min(cpu[name]) * 1000:10.3f}")
    for name, seconds in parts:
        print(f"{name:32} {seconds * 1000:10.3f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--records", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="the stores take turns this many times (the machine is shared)")
    args = parser.parse_args()
    shape = f"{args.records} appends + 1 sync a step, {args.steps} steps x {args.rounds} rounds"
    report(f"with disk flushes ({shape})", *measure(args, fsync=True))
    report(f"software only: no disk flushes ({shape})", *measure(args, fsync=False))


if __name__ == "__main__":
    main()
