"""What a command prints when a run ends, cannot start, or only plans: for people and as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..engine.prepare import StaticErrors
from ..engine.session import RunResult
from ..errors import EXIT_OK, EXIT_USAGE, Refused
from ..evaluation.values import to_json
from .display import Display
from .output import print_diagnostics


def print_refusal(error: Refused, as_json: bool) -> int:
    """A run that could not start: the diagnostics, the reason, exit 2."""
    if isinstance(error, StaticErrors):
        print_diagnostics(error.diagnostics, error.sources)
    sys.stderr.write(f"runbook: error: {error}\n")
    if as_json:
        # Automation reading stdout gets an answer too, not an empty stream.
        sys.stdout.write(json.dumps({"status": "refused", "exit_code": EXIT_USAGE,
                                     "error": str(error)}, ensure_ascii=False) + "\n")
    return EXIT_USAGE


def print_plan(plan, as_json: bool, expand: bool = False) -> int:
    """The plan for people, or as one JSON document."""
    from ..reporting.plan_text import render_plan

    if as_json:
        sys.stdout.write(json.dumps(plan.to_json(), indent=2, ensure_ascii=False,
                                    default=lambda v: to_json(v) if not isinstance(v, str)
                                    else v) + "\n")
    else:
        sys.stdout.write(render_plan(plan, expand))
    return EXIT_OK


def print_result(result: RunResult, display: Display, as_json: bool) -> None:
    """The summary table and where the transcript is; the JSON summary with --output json."""
    outcome = result.outcome
    # An instance shows its place: `upgrade[web3] [3/5]` (a host), `deploy[b] [2/3]` (a for).
    rows = [(f"{s.name} [{s.place}]" if getattr(s, "place", "") else s.name, s.status,
             s.duration_ms) for s in result.steps]
    display.summary(rows, outcome.status, result.exit_code, result.duration_ms)
    display.line(f"transcript: {_relative(Path(result.transcript))}", "dim")
    if outcome.status in RESUMABLE and not outcome.unrecorded:
        display.line(f"to continue: {resume_command(result)}", "bold")
    if outcome.unrecorded:
        sys.stderr.write(f"runbook: error: {outcome.reason}\nrunbook: the run stopped at "
                         f"{outcome.failed_step or 'its start'} without recording its end; "
                         "once the record can be written again, continue it with: "
                         f"runbook resume {result.run_id}\n")
    if as_json:
        mask = display.mask
        summary = {
            "run_id": result.run_id, "runbook": result.runbook, "status": outcome.status,
            "exit_code": result.exit_code, "failed_step": outcome.failed_step,
            "reason": mask(outcome.reason) or None, "duration_ms": result.duration_ms,
            "transcript": result.transcript,
            "steps": [{"name": mask(s.name), "status": s.status, "duration_ms": s.duration_ms,
                       "reason": mask(s.status_reason) or None,
                       **({"host": s.host.name} if s.host is not None else {})}
                      for s in result.steps],
        }
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


RESUMABLE = ("paused", "interrupted", "failed")


def resume_command(result: RunResult) -> str:
    """The exact command that continues this run from here: by run id where the working
    directory's store finds it, else by its transcript's path."""
    transcript = Path(result.transcript)
    default = Path.cwd() / ".runbook" / "runs" / result.run_id / "transcript.jsonl"
    if not transcript.exists() or transcript.resolve() == default.resolve():
        return f"runbook resume {result.run_id}"
    return f"runbook resume {_relative(transcript)}"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
