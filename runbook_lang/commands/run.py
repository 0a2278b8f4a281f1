"""`runbook run FILE`: arguments in, a plan or a run out (the front door does the work)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import plan as plan_of
from .. import run as run_for_real
from ..engine.prepare import ParamInput, StaticErrors
from ..engine.session import RunRequest, RunResult
from ..errors import EXIT_OK, EXIT_USAGE, Refused
from ..evaluation.values import to_json
from ..reporting.display import Display
from ..reporting.output import print_diagnostics
from .common import store_of


def run_command(args) -> int:
    """Entry point of `runbook run`."""
    display = Display(sys.stderr if args.output == "json" else sys.stdout)
    request = RunRequest(
        file=args.file, params=ParamInput(args.param or [], args.params), dry_run=args.dry_run,
        yes=args.yes, approvals=args.approve or [], as_name=args.as_name,
        from_step=args.from_step, fail_at=args.fail_at, interactive=sys.stdin.isatty(),
        argv=["runbook", *sys.argv[1:]], output_json=args.output == "json", display=display)
    try:
        if args.dry_run:
            return print_plan(plan_of(request), args.output == "json")
        result = run_for_real(request, store_of(args))
    except Refused as error:
        return refused(error, args.output == "json")
    print_result(result, display, args.output == "json")
    return result.exit_code


def refused(error: Refused, as_json: bool) -> int:
    """A run that could not start: the diagnostics, the reason, exit 2."""
    if isinstance(error, StaticErrors):
        print_diagnostics(error.diagnostics, error.sources)
    sys.stderr.write(f"runbook: error: {error}\n")
    if as_json:
        # Automation reading stdout gets an answer too, not an empty stream.
        sys.stdout.write(json.dumps({"status": "refused", "exit_code": EXIT_USAGE,
                                     "error": str(error)}, ensure_ascii=False) + "\n")
    return EXIT_USAGE


def print_plan(plan, as_json: bool) -> int:
    """The plan for people, or as one JSON document."""
    from ..reporting.plan_text import render_plan

    if as_json:
        sys.stdout.write(json.dumps(plan.to_json(), indent=2, ensure_ascii=False,
                                    default=lambda v: to_json(v) if not isinstance(v, str)
                                    else v) + "\n")
    else:
        sys.stdout.write(render_plan(plan))
    return EXIT_OK


def print_result(result: RunResult, display: Display, as_json: bool) -> None:
    """The summary table and where the transcript is; the JSON summary with --output json."""
    outcome = result.outcome
    rows = [(s.name, s.status, s.duration_ms) for s in result.steps]
    display.summary(rows, outcome.status, result.exit_code, result.duration_ms)
    display.line(f"transcript: {_relative(Path(result.transcript))}", "dim")
    if as_json:
        mask = display.mask
        summary = {
            "run_id": result.run_id, "runbook": result.runbook, "status": outcome.status,
            "exit_code": result.exit_code, "failed_step": outcome.failed_step,
            "reason": mask(outcome.reason) or None, "duration_ms": result.duration_ms,
            "transcript": result.transcript,
            "steps": [{"name": mask(s.name), "status": s.status, "duration_ms": s.duration_ms,
                       "reason": mask(s.status_reason) or None} for s in result.steps],
        }
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
