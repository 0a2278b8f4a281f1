"""Startup, check, per-step and streaming figures, each against its baseline in the same run.

    python bench/bench_run.py [--runs 5]

Prints a table; every figure is a median of --runs repetitions. Targets (the project's
quality bar): `runbook --version` within 2x a bare Python start; `runbook check` of 5,000
steps within 1.0 s, and linear in size (1,000 and 20,000 steps are measured beside it);
per-step overhead of `runbook run` within 3 ms of running the command
directly, durable transcript on; recording within 1 ms a step; 400 MB of output streamed at
50 MB/s or more with the process under 150 MiB peak memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_steps import generate  # noqa: E402

PYTHON = sys.executable
RUNBOOK = [PYTHON, "-m", "runbook_lang"]


def timed(cmd: list[str], cwd: Path, runs: int, stdout=subprocess.DEVNULL) -> float:
    """Median wall time of a command, in seconds."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdout=stdout, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_rss_of(cmd: list[str], cwd: Path) -> tuple[float, int, float]:
    """(seconds, exit code, peak RSS in MiB) of one run, measured from a fresh child."""
    probe = (
        "import resource,subprocess,sys,time;"
        "t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
        "d=time.perf_counter()-t;"
        "print(d, r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([PYTHON, "-c", probe, *cmd], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2]) / 1024


CHECK_SIZES = (1000, 5000, 20000)


def bench_startup(work: Path, runs: int) -> list[tuple]:
    bare = timed([PYTHON, "-c", "pass"], work, runs)
    version = timed([*RUNBOOK, "--version"], work, runs)
    helptext = timed([*RUNBOOK, "--help"], work, runs)
    rows = [
        ("python -c pass (baseline)", f"{bare * 1000:.0f} ms", ""),
        ("runbook --version", f"{version * 1000:.0f} ms", f"{version / bare:.2f}x bare (≤ 2x)"),
        ("runbook --help", f"{helptext * 1000:.0f} ms", f"{helptext / bare:.2f}x bare"),
    ]
    return rows + bench_check(work, runs)


def bench_check(work: Path, runs: int) -> list[tuple]:
    """`runbook check` of generated files of 1,000, 5,000 and 20,000 steps."""
    rows = []
    for steps in CHECK_SIZES:
        big = work / f"big{steps}.runbook"
        big.write_text(generate(steps))
        lines = big.read_text().count("\n")
        # Fewer repetitions of the largest file: its figure is for linearity, not a target.
        check = timed([*RUNBOOK, "check", str(big)], work, runs if steps <= 5000 else 1)
        verdict = f"{check / steps * 1e6:.0f} µs/step"
        if steps == 5000:
            verdict += f", {'ok' if check <= 1.0 else 'OVER'} (≤ 1.0 s)"
        rows.append((f"runbook check, {steps:,} steps ({lines:,} lines)", f"{check:.2f} s",
                     verdict))
    return rows


def bench_steps(work: Path, runs: int, steps: int = 300) -> list[tuple]:
    book = work / "steps.runbook"
    book.write_text("".join(f'step s{i} "true {i}" {{\n  run "true"\n}}\n' for i in range(steps)))
    script = work / "steps.sh"
    script.write_text("#!/bin/sh\n" + "sh -c true\n" * steps)
    script.chmod(0o755)
    direct = timed(["/bin/sh", str(script)], work, runs)
    runbook = timed([*RUNBOOK, "run", str(book), "--transcript-dir", str(work / "runs")], work,
                    runs)
    overhead = (runbook - direct) / steps * 1000
    return [
        (f"{steps} x sh -c true, shell script (baseline)", f"{direct * 1000:.0f} ms", ""),
        (f"{steps} steps of run \"true\", transcript on", f"{runbook * 1000:.0f} ms",
         f"{overhead:.2f} ms/step overhead incl. startup (≤ 3 ms)"),
    ]


def bench_recording(work: Path, steps: int = 300) -> list[tuple]:
    """The transcript's own cost per step: the records a step writes, and its fsync."""
    sys.path.insert(0, str(HERE.parent))
    from runbook_lang.store.files import FileRunWriter as TranscriptWriter

    writer = TranscriptWriter(work / "rec" / "r1", "r1")
    digest = {"bytes": 5, "sha256": "0" * 64, "tail": "true\n", "log": "output/x.log"}
    start = time.perf_counter()
    for i in range(steps):
        writer.sync()  # before each step starts
        writer.append("step_started", step=f"s{i}", title="t", attempt=1)
        writer.append("command_started", step=f"s{i}", command="true", cwd="/tmp")
        out, err = writer.output_paths(i, f"s{i}")
        out.touch()
        err.touch()
        writer.append("command_finished", step=f"s{i}", command="true", cwd="/tmp",
                      exit_code=0, duration_ms=1, stdout=digest, stderr=digest, log="x")
        writer.append("step_finished", step=f"s{i}", title="t", attempt=1,
                      status="succeeded", reason="", duration_ms=1)
    writer.close()
    per_step = (time.perf_counter() - start) / steps * 1000
    return [("recording: 4 records + logs + fsync per step", f"{per_step:.3f} ms/step",
             f"{'ok' if per_step <= 1 else 'OVER'} (≤ 1 ms)")]


def bench_stream(work: Path, megabytes: int = 400) -> list[tuple]:
    book = work / "stream.runbook"
    command = f"head -c {megabytes}000000 /dev/zero"
    book.write_text(f'step big "{megabytes} MB" {{\n  run "{command}"\n}}\n')
    direct, _, direct_rss = peak_rss_of(["sh", "-c", f"head -c {megabytes}000000 /dev/zero"],
                                        work)
    seconds, code, rss = peak_rss_of([*RUNBOOK, "run", str(book), "--transcript-dir",
                                      str(work / "runs")], work)
    rate = megabytes / seconds
    return [
        (f"{megabytes} MB to /dev/null directly (baseline)", f"{direct:.2f} s", ""),
        (f"{megabytes} MB through runbook run (exit {code})", f"{seconds:.2f} s",
         f"{rate:.0f} MB/s (≥ 50), peak {rss:.0f} MiB (< 150)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--check-only", action="store_true",
                        help="only the start-up and `runbook check` figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    env_note = f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    try:
        rows = bench_startup(work, args.runs)
        if not args.check_only:
            rows += bench_steps(work, args.runs) + bench_recording(work)
            if not args.skip_stream:
                rows += bench_stream(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"runbook-lang benchmarks ({env_note}, median of {args.runs})")
    for name, value, verdict in rows:
        print(f"  {name.ljust(width)}  {value:>10}  {verdict}")


if __name__ == "__main__":
    main()
