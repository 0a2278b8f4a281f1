"""Where `runbook check` spends its time: a generated runbook of N steps, sampled and profiled.

    python bench/profile_check.py [--steps 5000] [--top 25]
    python bench/bench_run.py --profile check [--steps 5000] [--top 25]

Checks the runbook the `check` part times (`gen_steps.generate`: a command with a capture,
a timeout and a retry a step), in fresh processes, imports included:

- three times as `runbook check` (the median is the honest wall time);
- once with a sampler: a thread that looks at the checking thread's stack about every
  millisecond and counts the stage it is in (the parser's loop, building the AST, the AST's
  node classes, reading commands for E280, the analysis, imports, freeing the tree, the
  cyclic collector; interpreter start-up and exit are not sampled). A sample costs every
  stage alike, so these shares are the ones to read;
- once under `python -m cProfile`, for the functions with the most own time and their
  calls. cProfile charges every call a fee, so it inflates code that makes many small calls
  (the loop's list appends, the analysis) against code that makes few.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_steps import generate  # noqa: E402
from measure import clean_environment  # noqa: E402
from profile_steps import (  # noqa: E402
    _import_ms,
    _table,
    plain_wall,
    profile_main,
    under_cprofile,
)

# The stage of a sampled stack: the innermost of our frames whose file starts with one of
# these (other code counts for the stage that called it).
STAGES = (
    ("runbook_lang/syntax/lalr.py", "parse: the LALR loop (syntax/lalr)"),
    ("runbook_lang/syntax/transform.py", "parse: building the AST (syntax/transform, strings)"),
    ("runbook_lang/syntax/strings.py", "parse: building the AST (syntax/transform, strings)"),
    ("runbook_lang/syntax/nodes.py", "AST node classes (syntax/nodes, source, frozen)"),
    ("runbook_lang/syntax/source.py", "AST node classes (syntax/nodes, source, frozen)"),
    ("runbook_lang/syntax/frozen.py", "AST node classes (syntax/nodes, source, frozen)"),
    ("<string>", "AST node classes (syntax/nodes, source, frozen)"),  # their generated `make`s
    ("runbook_lang/syntax/shell", "E280: reading commands (syntax/shell*)"),
    ("runbook_lang/analysis/quoting.py", "E280: reading commands (syntax/shell*)"),
    ("runbook_lang/analysis/", "analysis (analysis/, syntax/walk)"),
    ("runbook_lang/syntax/walk.py", "analysis (analysis/, syntax/walk)"),
    ("runbook_lang/syntax/", "parse: reading the file (syntax/loader, parser)"),
    ("runbook_lang/reporting/", "printing the result"),
    # The tree is freed as `run_check` returns, in the frame of the command line.
    ("runbook_lang/", "the command line, freeing the AST as it returns"),
)

# Run in the child: sample the main thread while it runs `runbook check BOOK`, print JSON.
SAMPLER = r'''
import gc, json, sys, threading, time
STAGES = json.loads(sys.argv[2])
counts, collector = {}, [0.0, 0.0]
main_id = threading.get_ident()
stop = threading.Event()

def stage_of(frame):
    importing = False
    found = None
    while frame is not None:
        path = frame.f_code.co_filename
        if frame.f_code.co_name == "_find_and_load":
            importing = True
        if found is None:
            if "/runbook_lang/" in path:
                path = "runbook_lang/" + path.split("/runbook_lang/", 1)[1]
            for prefix, name in STAGES:
                if path.startswith(prefix):
                    found = name
                    break
        frame = frame.f_back
    return "imports" if importing else found or "interpreter start and exit"

def sample():
    while not stop.wait(0.0005):
        frame = sys._current_frames().get(main_id)
        if frame is not None:
            name = "cyclic garbage collector" if collector[1] else stage_of(frame)
            counts[name] = counts.get(name, 0) + 1

def timed(phase, info):
    if phase == "start":
        collector[1] = time.perf_counter()
    else:
        collector[0] += time.perf_counter() - collector[1]
        collector[1] = 0.0

sys.setswitchinterval(0.0002)
gc.callbacks.append(timed)
thread = threading.Thread(target=sample, daemon=True)
start = time.perf_counter()
thread.start()
from runbook_lang.cli import main
import io, contextlib
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["check", sys.argv[1]])
stop.set()
thread.join()
print(json.dumps({"code": code, "seconds": time.perf_counter() - start, "counts": counts,
                  "collector": collector[0]}))
'''


def _sampled(book: Path, work: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", SAMPLER, str(book), json.dumps(STAGES)],
                          cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"runbook check failed under the sampler:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _stages(sampled: dict, steps: int) -> list[str]:
    counts: dict[str, int] = sampled["counts"]
    whole = sum(counts.values()) or 1
    seconds = sampled["seconds"]
    lines = [f"  {'ms':>8} {'share':>6} {'us/step':>8}  stage ({whole:,} samples)"]
    for name, count in sorted(counts.items(), key=lambda item: item[1], reverse=True):
        share = count / whole
        lines.append(f"  {share * seconds * 1000:8.0f} {share:6.1%} "
                     f"{share * seconds * 1e6 / steps:8.1f}  {name}")
    lines.append(f"  (the cyclic collector ran {sampled['collector'] * 1000:.0f} ms in all)")
    return lines


def profile_check(steps: int = 5000, top: int = 25, runs: int = 3) -> str:
    """Sample and profile `runbook check` of a generated runbook of `steps` steps."""
    clean_environment()
    with tempfile.TemporaryDirectory(prefix="runbook-profile-") as scratch:
        work = Path(scratch)
        book = work / "check.runbook"
        book.write_text(generate(steps))
        wall = plain_wall(["check", str(book)], work, runs)
        sampled = _sampled(book, work)
        stats, _ = under_cprofile(["check", str(book)], work)
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [
        f"runbook check of {steps:,} generated steps",
        f"  wall time: {wall * 1000:.0f} ms (median of {runs}; {wall * 1e6 / steps:.0f} us a "
        "step, start-up included)",
        f"\nwhere the time goes (sampled; {sampled['seconds'] * 1000:.0f} ms from start-up to "
        "the result)",
        *_stages(sampled, steps),
        f"\ntop {top} by own time under cProfile ({total * 1000:.0f} ms profiled, of which "
        f"imports {_import_ms(stats):.0f} ms; cum/step in ms)",
        *_table(stats, "tottime", top, steps),
    ]
    return "\n".join(lines)


def main() -> None:
    """The profile on its own, without the rest of the benchmark."""
    profile_main(profile_check, __doc__, 5000)


if __name__ == "__main__":
    main()
