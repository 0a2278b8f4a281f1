"""A real run: lock, transcript, signals, the interpreter, the summary and the exit code."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .. import __version__
from ..interpreter import Interpreter
from ..locks import LockBusy, acquire, lock_path
from ..runtime import Runtime
from ..transcript import TranscriptWriter, new_run_id, runs_root
from .run import EXIT_USAGE, file_sha256


def execute_run(rt: Runtime, args) -> int:
    """Run for real; returns the exit code of LANGUAGE.md §8."""
    run_id = new_run_id()
    base = Path.cwd() / ".runbook"
    environment = rt.params.get("environment")
    holder = {"run_id": run_id, "user": rt.options.operator, "host": rt.options.host,
              "runbook": str(rt.module.path)}
    try:
        lock = acquire(lock_path(base, rt.module.path, str(environment)
                                 if environment is not None else None), holder)
    except LockBusy as busy:
        sys.stderr.write(f"runbook: error: refused: {busy.describe()}\n")
        return EXIT_USAGE
    try:
        return _run_locked(rt, args, run_id, lock)
    finally:
        lock.release()


def _run_locked(rt: Runtime, args, run_id: str, lock) -> int:
    run_dir = runs_root(rt.options.transcript_dir) / run_id if rt.options.transcript_dir \
        is None else rt.options.transcript_dir / run_id
    writer = TranscriptWriter(run_dir, run_id, rt.mask)
    rt.recorder = writer
    rt.builtins["run_id"] = run_id
    header = rt.module.ast.header
    title = rt.evaluator(None).render(header.title) if header is not None else ""
    started = time.monotonic()
    writer.append(
        "run_started", runbook=args.file, sha256=file_sha256(rt.module.path), title=title,
        params={k: _shown(v) for k, v in rt.params.items()},
        operator={"user": rt.options.operator, "host": rt.options.host},
        version=__version__, argv=rt.options.argv, mode="run",
        cwd=str(Path.cwd()), lock_takeover=lock.takeover)
    writer.sync()
    rt.display.line(f"runbook {__version__} · run {run_id} · {title or args.file}", "bold")
    rt.interrupts.install()
    try:
        outcome = Interpreter(rt).execute()
    finally:
        rt.interrupts.restore()
    duration_ms = int((time.monotonic() - started) * 1000)
    writer.append("run_finished", status=outcome.status, exit_code=outcome.exit_code,
                  duration_ms=duration_ms, failed_step=outcome.failed_step,
                  reason=outcome.reason or None)
    writer.close()
    rows = [(s.name, s.status, s.duration_ms) for s in outcome.steps]
    rt.display.summary(rows, outcome.status, outcome.exit_code, duration_ms)
    rt.display.line(f"transcript: {_relative(run_dir / 'transcript.jsonl')}", "dim")
    if rt.options.output_json:
        summary = {
            "run_id": run_id, "runbook": args.file, "status": outcome.status,
            "exit_code": outcome.exit_code, "failed_step": outcome.failed_step,
            "reason": rt.mask(outcome.reason) or None, "duration_ms": duration_ms,
            "transcript": str(run_dir / "transcript.jsonl"),
            "steps": [{"name": s.name, "status": s.status, "duration_ms": s.duration_ms,
                       "reason": rt.mask(s.status_reason) or None} for s in outcome.steps],
        }
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return outcome.exit_code


def _shown(value):
    from ..values import to_json

    return to_json(value)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
