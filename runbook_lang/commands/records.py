"""`runbook verify`, `runbook show`, `runbook history`: reading what runs recorded."""

from __future__ import annotations

import os
import sys

from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from ..store import store_for, store_holding


def run_verify(args) -> int:
    """Check the record; exit 1 naming the first bad place, 0 with the head when intact."""
    import re
    from pathlib import Path

    from ..engine.audit import audit_run

    head = args.head.lower() if args.head else None
    if head is not None and not re.fullmatch(r"[0-9a-f]{64}", head):
        raise UsageError(f"--head {args.head}: expected the 64 hex digits of a head hash, "
                         "as `runbook verify` prints it")
    store = store_holding(args.transcript, args.store)
    ref = store.resolve(args.transcript)
    if ref is None:
        sys.stderr.write(f"runbook: error: no transcript at {args.transcript!r} (give a run "
                         "id, a run directory or a transcript.jsonl)\n")
        return EXIT_USAGE
    audit = audit_run(store, ref, signers=Path(args.signers) if args.signers else None,
                      head=head)
    if not audit.ok:
        first = audit.problems[0]
        print(f"FAILED: {_located(first)}")
        for problem in audit.problems[1:]:
            print(f"  also: {_located(problem)}")
        return EXIT_FAILED
    result = audit.chain
    print(f"ok: {result.records} records; chain, head, snapshot and output logs intact")
    print(f"head: {result.head}")
    if head is not None:
        print("the head you gave is the last record")
    if audit.sealed is not None:
        print(audit.sealed)
    for decision in audit.decisions:
        print(decision.describe())
    return EXIT_OK


def _located(problem) -> str:
    """A problem's reason, led by the transcript line it concerns unless it names it."""
    if problem.line and f"line {problem.line}" not in problem.reason:
        return f"line {problem.line}: {problem.reason}"
    return problem.reason


def run_show(args) -> int:
    """Print the audit report of a run."""
    from ..reporting.report import build_report, render_html, render_json, render_text

    store = store_holding(args.transcript, args.store)
    ref = store.resolve(args.transcript)
    if ref is None:
        sys.stderr.write(f"runbook: error: no transcript at {args.transcript!r}\n")
        return EXIT_USAGE
    from ..engine.audit import seal_summary

    records, _torn = store.records(ref)
    if not any(isinstance(r, dict) and r.get("event") == "run_started" for r in records):
        # Nothing says a run happened: no report to make (`verify` says what is wrong).
        sys.stderr.write(f"runbook: error: {args.transcript} holds no run's transcript (no "
                         "run_started record); runbook verify says what is wrong with it\n")
        return EXIT_USAGE
    report = build_report(records, store.verify(ref), seal_summary(store.seal(ref)))
    renderers = {"text": render_text, "markdown": lambda r: render_text(r, markdown=True),
                 "html": render_html, "json": render_json}
    sys.stdout.write(renderers[args.format](report))
    return EXIT_OK


def run_history(args) -> int:
    """The recorded runs, newest first: with `--transcript-dir`, those of that folder; else
    those of every `.runbook/runs` folder under the current repository."""
    from pathlib import Path

    from ..store.discovery import find_runs_dirs
    from ..store.files import LocalStore

    found = None
    team = args.store or os.environ.get("RUNBOOK_STORE")
    if team or args.transcript_dir:
        summaries = [(run, Path.cwd()) for run in
                     store_for(args.store, args.transcript_dir).runs()]
    else:
        found = find_runs_dirs()
        summaries = [(run, runs_dir.parent.parent) for runs_dir in found.runs_dirs
                     for run in LocalStore(runs_dir).runs()]
        summaries.sort(key=lambda pair: pair[0].run_id, reverse=True)
    if getattr(args, "output", "text") == "json":
        import json

        listed = [{"run_id": run.run_id, "runbook": _runbook_shown(run.runbook, started_in, found),
                   "status": run.status, "started": run.started, "operator": run.operator,
                   "duration_ms": run.duration_ms} for run, started_in in summaries]
        sys.stdout.write(json.dumps(listed, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    rows = []
    for run, started_in in summaries:
        duration = run.duration_ms
        rows.append((run.run_id, _runbook_shown(run.runbook, started_in, found), run.status,
                     run.operator, run.started,
                     f"{duration / 1000:.1f}s" if isinstance(duration, int) else "-"))
    if not rows:
        where = (found.where() if found is not None
                 else "in the team store" if team else f"in {args.transcript_dir}")
        print(f"no recorded runs ({'looked ' + where})")
        return EXIT_OK
    header = ("RUN ID", "RUNBOOK", "STATUS", "OPERATOR", "STARTED", "DURATION")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _runbook_shown(runbook: str, started_in, found) -> str:
    """A run's runbook as a path from the working directory when the run was started
    elsewhere in the repository (`examples/deploy.runbook`), else as recorded."""
    import os
    from pathlib import Path

    if found is None or Path(runbook).is_absolute() or started_in == Path.cwd().resolve():
        return runbook
    return os.path.relpath(started_in / runbook, Path.cwd())
