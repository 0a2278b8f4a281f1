"""`runbook resume` and `runbook approve`: arguments in, the front door's answer out."""

from __future__ import annotations

import json
import sys

from .. import approve as approve_at_gate
from .. import resume as resume_run
from ..engine.approve import ApproveRequest
from ..engine.resumption import AlreadySucceeded, ResumeRequest
from ..errors import EXIT_OK, Refused
from ..reporting.display import Display
from ..reporting.outcome import print_refusal, print_result
from ..store import redact_argv, store_for


def run_resume(args) -> int:
    """Entry point of `runbook resume`."""
    as_json = args.output == "json"
    displays: list[Display] = []

    def display_for(options) -> Display:
        displays.append(Display(sys.stderr if options.output_json else sys.stdout))
        return displays[-1]

    request = ResumeRequest(args.run, args.approve or [], args.yes, args.as_name,
                            args.allow_changed, sys.stdin.isatty(),
                            redact_argv(["runbook", *sys.argv[1:]]), as_json, args.sign_with,
                            forks=args.forks, ssh_config=args.ssh_config)
    try:
        result = resume_run(request, store_for(args.store), display_for)
    except Refused as error:
        return print_refusal(error, False)
    if isinstance(result, AlreadySucceeded):
        if as_json:
            print(json.dumps({"run_id": result.run_id, "status": "succeeded", "exit_code": 0,
                              "resumed": False, "message": result.message}))
        else:
            print(result.message)
        return EXIT_OK
    print_result(result, displays[-1], as_json)
    return result.exit_code


def run_approve(args) -> int:
    """Entry point of `runbook approve RUN_ID GATE [--as NAME] [--reject] [--reason TEXT]
    [--key FILE] [--store URL]`."""
    request = ApproveRequest(args.run_id, args.gate, args.as_name, args.reject, args.reason,
                             args.key)
    try:
        message = approve_at_gate(request, store_for(args.store))
    except Refused as error:
        return print_refusal(error, False)
    print(message)
    return EXIT_OK
