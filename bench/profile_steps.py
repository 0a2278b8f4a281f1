"""Where `runbook run` spends its time per step: cProfile of N trivial steps.

    python bench/profile_steps.py [--steps 200] [--top 25]
    python bench/bench_run.py --profile [--steps 200] [--top 25]

Runs `runbook run` of N steps of `run "true"` once without the profiler (the honest wall
time) and once under `python -m cProfile` (a fresh process, imports included), then
prints the top functions by cumulative and by own time, with each one's cost per step,
and own time summed by area: our subpackages, third-party packages, standard-library
modules, and the built-ins where the process waits for its children.
"""

from __future__ import annotations

import argparse
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_steps import generate_trivial  # noqa: E402
from measure import clean_environment  # noqa: E402
from peers import runbook_argv  # noqa: E402

Key = tuple[str, int, str]


def where(key: Key) -> str:
    """A short name for a profiled function: package-relative path, line and name."""
    path, line, name = key
    if path == "~":
        return name
    for marker in ("/runbook_lang/", "/site-packages/", "/lib/python3."):
        if marker in path:
            tail = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                tail = tail.split("/", 1)[1]  # drop the minor version: "11/"
            elif marker == "/runbook_lang/":
                tail = "runbook_lang/" + tail
            return f"{tail}:{line}({name})"
    return f"{Path(path).name}:{line}({name})"


def area(key: Key) -> str:
    """The part of the program a function belongs to."""
    path, _, name = key
    if path == "~":
        return f"built-in {name.removeprefix('<built-in method ').removesuffix('>')}"
    if "/runbook_lang/" in path:
        parts = path.split("/runbook_lang/", 1)[1].split("/")
        return "runbook_lang/" + (parts[0] if len(parts) > 1 else parts[0].removesuffix(".py"))
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if path.startswith("<frozen"):
        return "stdlib (frozen importlib)"
    if "/lib/python3." in path:
        module = path.split("/lib/python3.", 1)[1].split("/", 2)[1]
        return f"stdlib {module.removesuffix('.py')}"
    return Path(path).name


def _table(stats: pstats.Stats, order: str, top: int, steps: int) -> list[str]:
    raw = stats.stats  # type: ignore[attr-defined]
    index = 3 if order == "cumulative" else 2
    rows = sorted(raw.items(), key=lambda item: item[1][index], reverse=True)[:top]
    lines = [f"  {'calls':>8} {'own ms':>9} {'cum ms':>9} {'cum/step':>9}  function"]
    for key, (_, calls, own, cum, _) in rows:
        lines.append(f"  {calls:>8} {own * 1000:9.1f} {cum * 1000:9.1f} "
                     f"{cum * 1000 / steps:8.3f}m  {where(key)}")
    return lines


def _areas(stats: pstats.Stats, top: int, steps: int) -> list[str]:
    totals: dict[str, float] = defaultdict(float)
    for key, (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[area(key)] += own
    whole = sum(totals.values())
    lines = [f"  {'own ms':>9} {'share':>6} {'ms/step':>8}  area"]
    for name, own in sorted(totals.items(), key=lambda item: item[1], reverse=True)[:top]:
        lines.append(f"  {own * 1000:9.1f} {own / whole:6.1%} {own * 1000 / steps:8.3f}  {name}")
    return lines


def _import_ms(stats: pstats.Stats) -> float:
    # cProfile charges a recursive function's cumulative time to its outermost call
    # only, so this is the time spent importing modules, all of them.
    raw = stats.stats  # type: ignore[attr-defined]
    return max((v[3] for k, v in raw.items() if k[2] == "_find_and_load"), default=0.0) * 1000


def profile_run(steps: int = 200, top: int = 25) -> str:
    """Profile `runbook run` of `steps` trivial steps; the report as text."""
    clean_environment()
    with tempfile.TemporaryDirectory(prefix="runbook-profile-") as scratch:
        work = Path(scratch)
        book = work / "steps.runbook"
        book.write_text(generate_trivial(steps))
        args = ["run", str(book), "--transcript-dir", str(work / "runs")]
        wall = plain_wall(args, work)
        stats, profiled_wall = under_cprofile(args, work)
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [
        f"runbook run of {steps} steps of run \"true\"",
        f"  wall time without the profiler: {wall * 1000:.0f} ms ({wall * 1000 / steps:.2f} "
        "ms/step, start-up included)",
        f"  under cProfile: {profiled_wall * 1000:.0f} ms wall, {total * 1000:.0f} ms profiled, "
        f"of which imports {_import_ms(stats):.0f} ms",
        "  cum/step = a function's cumulative time divided by the number of steps",
        f"\ntop {top} by cumulative time",
        *_table(stats, "cumulative", top, steps),
        f"\ntop {top} by own time",
        *_table(stats, "tottime", top, steps),
        "\nown time by area",
        *_areas(stats, top, steps),
    ]
    return "\n".join(lines)


def plain_wall(args: list[str], work: Path, runs: int = 1) -> float:
    """`runbook ARGS…` without the profiler in `work`, once to warm the caches, then the
    median wall time of `runs` runs."""
    plain = [*runbook_argv(), *args]
    subprocess.run(plain, cwd=work, capture_output=True, check=True)
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(plain, cwd=work, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def under_cprofile(args: list[str], work: Path) -> tuple[pstats.Stats, float]:
    """`runbook ARGS…` once under `python -m cProfile` in `work`: its stats and wall time."""
    out = work / f"{args[0]}.prof"
    # `python -m runbook_lang` leaves without Python's teardown (cli.entry), so cProfile
    # would never write its stats: the profiled program calls main() and exits normally.
    driver = work / "runbook_main.py"
    driver.write_text("import sys\nfrom runbook_lang.cli import main\nsys.exit(main())\n")
    profiled = [sys.executable, "-m", "cProfile", "-o", str(out), str(driver), *args]
    start = time.perf_counter()
    done = subprocess.run(profiled, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"runbook {args[0]} failed under the profiler:\n"
                         f"{done.stderr[-2000:]}")
    return pstats.Stats(str(out)), wall


def profile_main(profile, doc: str, steps: int) -> None:
    """A profile on its own, without the rest of the benchmark: `--steps`, `--top`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(profile(args.steps, args.top))


def main() -> None:
    """The profile on its own, without the rest of the benchmark."""
    profile_main(profile_run, __doc__, 200)


if __name__ == "__main__":
    main()
