"""`runbook verify`, `runbook show`, `runbook history`: reading what runs recorded."""

from __future__ import annotations

import sys

from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ..store import store_for


def run_verify(args) -> int:
    """Recompute the hash chain and the output digests; exit 1 naming the first bad line."""
    store = store_for()
    ref = store.resolve(args.transcript)
    if ref is None:
        sys.stderr.write(f"runbook: error: no transcript at {args.transcript!r} (give a run "
                         "id, a run directory or a transcript.jsonl)\n")
        return EXIT_USAGE
    result = store.verify(ref)
    if result.ok:
        print(f"ok: {result.records} records, chain and output logs intact")
        print(f"head: {result.head}")
        return EXIT_OK
    first = result.problems[0]
    print(f"FAILED: {_located(first)}")
    for problem in result.problems[1:]:
        print(f"  also: {_located(problem)}")
    return EXIT_FAILED


def _located(problem) -> str:
    """A problem's reason, led by the transcript line it concerns unless it names it."""
    if problem.line and f"line {problem.line}" not in problem.reason:
        return f"line {problem.line}: {problem.reason}"
    return problem.reason


def run_show(args) -> int:
    """Print the audit report of a run."""
    from ..reporting.report import build_report, render_html, render_json, render_text

    store = store_for()
    ref = store.resolve(args.transcript)
    if ref is None:
        sys.stderr.write(f"runbook: error: no transcript at {args.transcript!r}\n")
        return EXIT_USAGE
    records, _torn = store.records(ref)
    report = build_report(records, store.verify(ref))
    renderers = {"text": render_text, "markdown": lambda r: render_text(r, markdown=True),
                 "html": render_html, "json": render_json}
    sys.stdout.write(renderers[args.format](report))
    return EXIT_OK


def run_history(args) -> int:
    """The recorded runs, newest first."""
    rows = []
    for run in store_for(transcript_dir=args.transcript_dir).runs():
        duration = run.duration_ms
        rows.append((run.run_id, run.runbook, run.status, run.operator, run.started,
                     f"{duration / 1000:.1f}s" if isinstance(duration, int) else "-"))
    if not rows:
        print("no recorded runs here")
        return EXIT_OK
    header = ("RUN ID", "RUNBOOK", "STATUS", "OPERATOR", "STARTED", "DURATION")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK
