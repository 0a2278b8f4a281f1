"""`runbook run FILE`: arguments in, a plan or a run out (the front door does the work)."""

from __future__ import annotations

import sys

from .. import plan as plan_of
from .. import run as run_for_real
from ..engine.prepare import ParamInput
from ..engine.session import RunRequest
from ..errors import Refused
from ..reporting.display import Display
from ..reporting.outcome import print_plan, print_refusal, print_result
from ..store import redact_argv, store_for


def run_command(args) -> int:
    """Entry point of `runbook run`."""
    display = Display(sys.stderr if args.output == "json" else sys.stdout)
    request = RunRequest(
        file=args.file, params=ParamInput(args.param or [], args.params), dry_run=args.dry_run,
        yes=args.yes, approvals=args.approve or [], as_name=args.as_name,
        from_step=args.from_step, fail_at=args.fail_at, interactive=sys.stdin.isatty(),
        argv=redact_argv(["runbook", *sys.argv[1:]]), output_json=args.output == "json",
        display=display, sign_with=args.sign_with, limit=args.limit, forks=args.forks,
        ssh_config=args.ssh_config)
    try:
        if args.dry_run:
            return print_plan(plan_of(request), args.output == "json",
                              getattr(args, "expand", False))
        result = run_for_real(request, store_for(args.store, args.transcript_dir))
    except Refused as error:
        return print_refusal(error, args.output == "json")
    print_result(result, display, args.output == "json")
    return result.exit_code
