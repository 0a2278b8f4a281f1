"""runbook-lang against its own targets and its peers, in one run.

    python bench/bench_run.py [--runs 5] [--parts startup,check,steps,recording,stream]
                              [--steps 200] [--peers just,task,ansible] [--json]
                              [--save FILE]
    python bench/bench_run.py --profile [run|check] [--steps N] [--top 25]

Prints a table of medians (each of --runs whole-process runs, cases taking turns), the
ratios between figures measured in the same run, and every target with its verdict.
--json prints one JSON document instead; --save FILE writes it as well. A peer that is
not installed is skipped and said so; its targets are reported as not measured.
--profile profiles `runbook run` of --steps trivial steps instead (profile_steps.py, 200 by
default); --profile check samples and profiles `runbook check` of a generated runbook of
--steps steps (profile_check.py, 5,000 by default).
docs/performance.md explains each figure and gives today's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import BenchError, Part, clean_environment, machine_info  # noqa: E402
from parts import (  # noqa: E402
    bench_check,
    bench_recording,
    bench_startup,
    bench_steps,
    bench_stream,
)
from peers import PEERS, dash_version, runbook_argv  # noqa: E402

PARTS = ("startup", "check", "steps", "recording", "stream")
SYMBOLS = {"<=": "≤", ">=": "≥"}


def _list(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(",") if word.strip())


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(word) for word in _list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of step counts: {text!r}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; names of parts and peers are checked here, with a clear message."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--parts", type=_list, default=PARTS,
                        help=f"comma-separated, of: {','.join(PARTS)} (default: all)")
    parser.add_argument("--skip-stream", action="store_true", help="leave out the stream part")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps for steps and --profile (default 200; 5,000 for "
                             "--profile check)")
    parser.add_argument("--peers", type=_list, default=tuple(PEERS),
                        help=f"comma-separated, of: {','.join(PEERS)}; '' for none")
    parser.add_argument("--check-sizes", type=_sizes,
                        default=(1000, 5000, 20000), help="step counts for check")
    parser.add_argument("--megabytes", type=int, default=400, help="output for stream")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--save", type=Path, metavar="FILE",
                        help="also write the JSON document to FILE")
    parser.add_argument("--profile", nargs="?", const="run", choices=("run", "check"),
                        help="profile `runbook run` (or `runbook check`) of --steps steps "
                             "instead")
    parser.add_argument("--top", type=int, default=25, help="rows per --profile table")
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    unknown = [p for p in args.peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peer {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    if args.steps is None:
        args.steps = 5000 if args.profile == "check" else 200
    if min(args.runs, args.steps, args.megabytes, *args.check_sizes) < 1:
        parser.error("--runs, --steps, --megabytes and --check-sizes must be at least 1")
    if args.skip_stream:
        args.parts = tuple(p for p in args.parts if p != "stream")
    return args


def tool_versions(parts: tuple[str, ...], peers: tuple[str, ...]) -> dict[str, str]:
    """The version of everything that was timed."""
    from measure import first_line

    runbook = first_line([*runbook_argv(), "--version"]) or "does not start"
    versions = {"runbook": runbook, "sh": dash_version()}
    if "steps" in parts:
        for name in peers:
            versions[PEERS[name].name] = PEERS[name].version() or "not installed"
    return versions


def run_parts(args: argparse.Namespace, work: Path) -> list[Part]:
    """Run the chosen parts in order; a part that fails is reported, the others still run."""
    jobs: dict[str, Callable[[Path], Part]] = {
        "startup": lambda w: bench_startup(w, args.runs),
        "check": lambda w: bench_check(w, args.runs, args.check_sizes),
        "steps": lambda w: bench_steps(w, args.runs, args.steps, args.peers),
        "recording": lambda w: bench_recording(w, args.runs, args.steps),
        "stream": lambda w: bench_stream(w, args.runs, args.megabytes),
    }
    done = []
    for name in args.parts:
        scratch = work / name
        scratch.mkdir()
        if not args.json:
            print(f"… {name}", file=sys.stderr, flush=True)
        try:
            done.append(jobs[name](scratch))
        except BenchError as exc:
            done.append(Part(name, error=str(exc)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return done


def document(args: argparse.Namespace, parts: list[Part], machine: dict,
             versions: dict[str, str]) -> dict:
    """Everything measured, as one JSON-ready document."""
    figures = [f for p in parts for f in p.figures]
    targets = [t.as_dict() for p in parts for t in p.targets]
    verdicts = [t["passed"] for t in targets if t["passed"] is not None]
    return {
        "runs": args.runs,
        "steps": args.steps,
        "parts": [p.name for p in parts],
        "machine": machine,
        "tools": versions,
        "figures": {f.key: {"label": f.label, "value": round(f.value, 4), "unit": f.unit,
                            "samples": f.samples, "note": f.note} for f in figures},
        "ratios": {f.key: round(f.value, 4) for f in figures if f.unit == "x"},
        "targets": targets,
        "all_passed": all(verdicts) if verdicts else None,
        "skipped": [note for p in parts for note in p.notes],
        "errors": {p.name: p.error for p in parts if p.error},
    }


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("x", "s"):
        return f"{value:.2f} {unit}"
    if unit in ("ms", "us"):
        return f"{value:.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{value:.0f} {unit}"


def render(doc: dict, parts: list[Part]) -> str:
    """The table a person reads."""
    m = doc["machine"]
    load = " ".join(f"{x:.2f}" for x in m["load_average"])
    after = " ".join(f"{x:.2f}" for x in m["load_average_after"])
    lines = [
        f"runbook-lang benchmarks: medians of {doc['runs']} whole-process runs, taking turns",
        f"machine: {m['cpu_count']} CPUs ({m.get('cpu_model', '?')}), Python {m['python']}, "
        f"{m['platform']}",
        f"load average: {load} before, {after} after",
        "tools: " + ", ".join(f"{k} {v}" if not v.startswith(k) else v
                              for k, v in doc["tools"].items()),
    ]
    rows = [f for p in parts for f in p.figures]
    width = max([len(f.label) for f in rows] + [len(t["label"]) for t in doc["targets"]] + [20])
    for part in parts:
        lines.append(f"\n{part.name}")
        if part.error:
            lines.append("  FAILED: " + part.error.replace("\n", "\n    "))
        for fig in part.figures:
            lines.append(f"  {fig.label.ljust(width)}  {_value(fig.value, fig.unit):>11}  "
                         f"{fig.note}".rstrip())
        lines += [f"  ({note})" for note in part.notes]
    if doc["targets"]:
        lines.append("\ntargets")
    for t in doc["targets"]:
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[t["passed"]]
        bar = f"{SYMBOLS[t['op']]} {t['limit']:g} {t['unit']}"
        lines.append(f"  {verdict}  {t['label'].ljust(width)}  {_value(t['value'], t['unit']):>11}"
                     f"  ({bar})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or the profile); 0 when every chosen part could be measured."""
    args = parse_args(argv)
    removed = clean_environment()
    if args.profile == "check":
        from profile_check import profile_check

        print(profile_check(args.steps, args.top))
        return 0
    if args.profile:
        from profile_steps import profile_run

        print(profile_run(args.steps, args.top))
        return 0
    machine = machine_info() | {"environment_removed": removed}
    versions = tool_versions(args.parts, args.peers)
    work = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    try:
        parts = run_parts(args, work)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    doc = document(args, parts, machine, versions)
    text = json.dumps(doc, indent=2)
    if args.save:
        args.save.write_text(text + "\n")
    print(text if args.json else render(doc, parts))
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
