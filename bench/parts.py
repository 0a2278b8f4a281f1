"""The parts of the benchmark: startup, check, steps (against the peers), recording, stream.

Each part takes a scratch directory and the number of runs, and returns a `Part` of
figures (medians), ratios between figures measured in the same part, and targets.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gen_steps import generate
from measure import BenchError, Part, Sample, interleaved, median, run_once
from peers import PEERS, RUNBOOK, SHELL, Tool, runbook_argv

PYTHON = sys.executable


def _case(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Callable[[], Sample]:
    return lambda: run_once(argv, cwd, env)


def _ms(samples: list[Sample]) -> list[float]:
    return [round(s.seconds * 1000, 2) for s in samples]


def _per_step(ms: float) -> str:
    return f"{ms:.2f}" if ms < 100 else f"{ms:,.0f}"


def bench_startup(work: Path, runs: int) -> Part:
    """`runbook --version` and `--help` against a bare `python -c pass` of the same Python."""
    part = Part("startup")
    runbook = runbook_argv()
    samples = interleaved(
        {
            "bare": _case([PYTHON, "-c", "pass"], work),
            "version": _case([*runbook, "--version"], work),
            "help": _case([*runbook, "--help"], work),
        },
        runs,
    )
    bare, version, helptext = (median(samples[k]) for k in ("bare", "version", "help"))
    part.figure("python", "python -c pass (baseline)", bare * 1000, "ms", _ms(samples["bare"]))
    part.figure("version", "runbook --version", version * 1000, "ms", _ms(samples["version"]))
    part.figure("help", "runbook --help", helptext * 1000, "ms", _ms(samples["help"]))
    part.figure("version_ratio", "runbook --version / python -c pass", version / bare, "x")
    part.figure("help_ratio", "runbook --help / python -c pass", helptext / bare, "x")
    part.target("version_ratio", "runbook --version vs python -c pass", version / bare, "<=",
                2.0, "x")
    return part


def bench_check(work: Path, runs: int, sizes: tuple[int, ...] = (1000, 5000, 20000)) -> Part:
    """`runbook check` of generated runbooks of several sizes, and how its time grows."""
    part = Part("check")
    cases = {}
    for size in sizes:
        book = work / f"check-{size}.runbook"
        book.write_text(generate(size))
        cases[size] = _case([*runbook_argv(), "check", str(book)], work)
    samples = interleaved(cases, runs)
    times = {size: median(samples[size]) for size in sizes}
    for size in sizes:
        lines = (work / f"check-{size}.runbook").read_text().count("\n")
        part.figure(f"s{size}", f"runbook check, {size:,} steps ({lines:,} lines)", times[size],
                    "s", [round(s.seconds, 3) for s in samples[size]])
    if 5000 in times:
        part.target("s5000", "runbook check of 5,000 steps", times[5000], "<=", 1.0, "s")
    if len(sizes) >= 3:
        small, mid, large = sorted(sizes)[:3]
        part.figure("growth_low", f"time ratio {mid:,} / {small:,} steps ({mid / small:.0f}x "
                    "the steps)", times[mid] / times[small], "x")
        part.figure("growth_high", f"time ratio {large:,} / {mid:,} steps ({large / mid:.0f}x "
                    "the steps)", times[large] / times[mid], "x")
        # The fixed cost (start-up, grammar) cancels out of the cost of each added step;
        # when checking is linear, a step added at 20k costs what one added at 1k did.
        low = (times[mid] - times[small]) / (mid - small)
        high = (times[large] - times[mid]) / (large - mid)
        part.figure("step_low", f"cost of a step, {small:,} to {mid:,}", low * 1e6, "us")
        part.figure("step_high", f"cost of a step, {mid:,} to {large:,}", high * 1e6, "us")
        part.figure("growth", "cost of a step, high range / low range", high / low, "x",
                    note="1.0 is linear; quadratic would be ~4")
        part.target("growth", "check grows linearly (step cost high / low range)", high / low,
                    "<=", 1.25, "x")
    return part


def bench_steps(work: Path, runs: int, steps: int = 200,
                peers: tuple[str, ...] = tuple(PEERS)) -> Part:
    """`runbook run` of N trivial steps against a shell script and the peers, taking turns."""
    part = Part("steps")
    tools: dict[str, Tool] = {"shell": SHELL}
    for name in peers:
        peer = PEERS[name]
        if peer.path() is None:
            part.notes.append(f"{peer.name}: not installed ({peer.install}), skipped")
        else:
            tools[name] = peer
    tools["runbook"] = RUNBOOK
    cases = {}
    for name, tool in tools.items():
        # Warm up on one step (caches, .pyc files) without paying N steps of Ansible for it.
        warm_argv, warm_env = tool.command(work / "warm" / name, 1)
        run_once(warm_argv, work / "warm" / name, warm_env)
        argv, env = tool.command(work / name, steps)
        cases[name] = _case(argv, work / name, env)
    # runbook on one step: its fixed cost, which the per-step figures below spread over N.
    argv, _ = RUNBOOK.command(work / "runbook-1", 1)
    cases["runbook-1"] = _case(argv, work / "runbook-1")
    samples = interleaved(cases, runs, warmup=False)
    totals = {name: median(samples[name]) for name in tools}
    single = median(samples["runbook-1"])
    for name, tool in tools.items():
        total = totals[name]
        part.figure(name, f"{tool.name}, {steps} steps", total * 1000, "ms", _ms(samples[name]),
                    note=f"{_per_step(total * 1000 / steps)} ms/step")
    runbook = totals["runbook"]
    overhead = (runbook - totals["shell"]) / steps * 1000
    part.figure("overhead", "runbook over the shell script, per step", overhead, "ms",
                note="start-up included")
    part.figure("single", "runbook run, 1 step (start-up, one step, finish)", single * 1000, "ms",
                _ms(samples["runbook-1"]))
    if steps > 1:
        marginal = (runbook - single) / (steps - 1) * 1000
        part.figure("marginal", f"runbook cost of a step, 1 to {steps} steps", marginal, "ms",
                    note=f"shell script: {totals['shell'] * 1000 / steps:.2f} ms/step")
    vs_just = runbook / totals["just"] if "just" in totals else None
    if "task" in totals:
        part.figure("vs_task", "runbook / task", runbook / totals["task"], "x")
    vs_ansible = totals["ansible"] / runbook if "ansible" in totals else None
    if vs_just is not None:
        part.figure("vs_just", "runbook / just", vs_just, "x")
    if vs_ansible is not None:
        part.figure("vs_ansible", "ansible-playbook / runbook", vs_ansible, "x")
    part.target("vs_just", f"runbook run vs just, {steps} steps", vs_just, "<=", 2.0, "x")
    part.target("overhead", "runbook run over sh -c true, per step", overhead, "<=", 1.0, "ms")
    part.target("vs_ansible", "runbook run faster than Ansible", vs_ansible, ">=", 100.0, "x")
    return part


def bench_recording(work: Path, runs: int, steps: int = 200) -> Part:
    """The transcript's own cost per step, in this process: the four records a step
    writes and the sync before the next step (a command that prints nothing has no log
    file)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from runbook_lang.store.chain import identity
        from runbook_lang.store.files import LocalStore
    except ImportError as exc:  # the store's interface moved: say so, measure the rest
        raise BenchError(f"cannot import the local store: {exc}") from exc

    part = Part("recording")
    digest = {"bytes": 0, "sha256": "0" * 64, "tail": "", "log": None}
    samples = []
    for run in range(runs):
        writer = LocalStore(work / "rec").create(f"r{run}", b"step s { run \"true\" }\n",
                                                  identity)
        start = time.perf_counter()
        for i in range(steps):
            writer.sync()  # before each step starts
            writer.append("step_started", step=f"s{i}", title="t", attempt=1)
            writer.append("command_started", step=f"s{i}", command="true", cwd="/tmp")
            writer.append("command_finished", step=f"s{i}", command="true", cwd="/tmp",
                          exit_code=0, duration_ms=1, stdout=digest, stderr=digest, log=None)
            writer.append("step_finished", step=f"s{i}", title="t", attempt=1,
                          status="succeeded", reason="", duration_ms=1)
        writer.close()
        samples.append((time.perf_counter() - start) / steps * 1000)
    per_step = statistics.median(samples)
    part.figure("per_step", "4 records + fdatasync, per step", per_step, "ms",
                [round(s, 3) for s in samples])
    part.target("per_step", "recording, per step", per_step, "<=", 1.0, "ms")
    return part


def bench_stream(work: Path, runs: int, megabytes: int = 400) -> Part:
    """`megabytes` MB of output through `runbook run` (masked, hashed, logged): rate and
    peak memory, against the same command writing to /dev/null directly."""
    part = Part("stream")
    command = f"head -c {megabytes}000000 /dev/zero"
    book = work / "stream.runbook"
    book.write_text(f'step big "{megabytes} MB" {{\n  run "{command}"\n}}\n')
    runs_dir = work / "stream-runs"
    warm = work / "warm.runbook"  # imports and bytecode, without 400 MB for it
    warm.write_text('step warm "warm" {\n  run "true"\n}\n')
    run_once([*runbook_argv(), "run", str(warm), "--transcript-dir", str(runs_dir)], work)

    def through_runbook() -> Sample:
        try:
            return run_once([*runbook_argv(), "run", str(book), "--transcript-dir",
                             str(runs_dir)], work)
        finally:
            shutil.rmtree(runs_dir, ignore_errors=True)  # the log holds all the bytes

    samples = interleaved({"direct": _case(["sh", "-c", command], work),
                           "runbook": through_runbook}, runs, warmup=False)
    direct, seconds = median(samples["direct"]), median(samples["runbook"])
    rate = megabytes / seconds
    peak = max(s.peak_rss_mib for s in samples["runbook"])
    part.figure("direct", f"{megabytes} MB to /dev/null directly (baseline)", direct, "s",
                [round(s.seconds, 3) for s in samples["direct"]])
    part.figure("runbook", f"{megabytes} MB through runbook run", seconds, "s",
                [round(s.seconds, 3) for s in samples["runbook"]])
    part.figure("rate", "rate through runbook run", rate, "MB/s")
    part.figure("peak_rss", "peak RSS of runbook run (largest of the runs)", peak, "MiB",
                [round(s.peak_rss_mib, 1) for s in samples["runbook"]])
    part.target("rate", f"{megabytes} MB through runbook run", rate, ">=", 50.0, "MB/s")
    part.target("peak_rss", "peak RSS while streaming", peak, "<=", 150.0, "MiB")
    return part
