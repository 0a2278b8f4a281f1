"""A real run: lock, transcript, signals, the interpreter, the summary and the exit code."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from .. import __version__
from ..engine.interpreter import Interpreter
from ..engine.runtime import Runtime
from ..errors import LockBusy
from ..evaluation.values import to_json
from ..store.locks import RunLock, acquire, lock_path
from ..store.transcript import TranscriptWriter, runs_root
from .run import EXIT_USAGE, file_sha256

SNAPSHOT = "runbook.snapshot"


def lock_base(runbook: Path) -> Path:
    """Where the lock of a runbook lives: beside the file, so that runs started from any
    working directory see the same lock; the working directory only when the runbook's own
    directory cannot be written."""
    import os

    folder = runbook.resolve().parent
    if os.access(folder, os.W_OK):
        return folder / ".runbook"
    return Path.cwd() / ".runbook"


def take_lock(rt: Runtime, run_id: str) -> RunLock | None:
    """The run lock for this runbook and environment, or None after saying who holds it."""
    environment = rt.params.get("environment")
    holder = {"run_id": run_id, "user": rt.options.operator, "host": rt.options.host,
              "runbook": str(rt.module.path)}
    path = lock_path(lock_base(rt.module.path), rt.module.path,
                     str(environment) if environment is not None else None)
    try:
        return acquire(path, holder)
    except LockBusy as busy:
        sys.stderr.write(f"runbook: error: refused: {busy.describe()}\n")
        return None


def execute_run(rt: Runtime, args) -> int:
    """Run for real; returns the exit code of LANGUAGE.md §8."""
    run_id = rt.builtins["run_id"]
    lock = take_lock(rt, run_id)
    if lock is None:
        return EXIT_USAGE
    try:
        root = rt.options.transcript_dir or runs_root(None)
        writer = TranscriptWriter(root / run_id, run_id, rt.mask)
        # A copy of the runbook as it ran: resume compares it step by step with the file.
        shutil.copyfile(rt.module.path, writer.run_dir / SNAPSHOT)
        header = rt.module.ast.header
        title = rt.evaluator(None).render(header.title) if header is not None else ""
        writer.append(
            "run_started", runbook=args.file, sha256=file_sha256(rt.module.path), title=title,
            params={k: to_json(v) for k, v in rt.params.items()},
            operator={"user": rt.options.operator, "host": rt.options.host},
            version=__version__, argv=rt.options.argv, mode="run", cwd=str(Path.cwd()),
            runbook_path=str(rt.module.path), lock_takeover=lock.takeover)
        rt.display.line(f"runbook {__version__} · run {run_id} · {title or args.file}", "bold")
        return drive(rt, writer, Interpreter(rt), args.file)
    finally:
        lock.release()


def drive(rt: Runtime, writer: TranscriptWriter, interpreter: Interpreter, file: str,
          start_index: int = 0, done: set[str] | None = None) -> int:
    """Run the interpreter with the transcript open; finish the record; print the summary."""
    writer.sync()
    rt.recorder = writer
    rt.builtins["run_id"] = writer.run_id
    started = time.monotonic()
    rt.interrupts.install()
    try:
        outcome = interpreter.execute(start_index, done)
    finally:
        rt.interrupts.restore()
    duration_ms = int((time.monotonic() - started) * 1000)
    writer.append("run_finished", status=outcome.status, exit_code=outcome.exit_code,
                  duration_ms=duration_ms, failed_step=outcome.failed_step,
                  reason=outcome.reason or None)
    writer.close()
    rows = [(s.name, s.status, s.duration_ms) for s in outcome.steps]
    rt.display.summary(rows, outcome.status, outcome.exit_code, duration_ms)
    transcript = writer.run_dir / "transcript.jsonl"
    rt.display.line(f"transcript: {_relative(transcript)}", "dim")
    if rt.options.output_json:
        summary = {
            "run_id": writer.run_id, "runbook": file, "status": outcome.status,
            "exit_code": outcome.exit_code, "failed_step": outcome.failed_step,
            "reason": rt.mask(outcome.reason) or None, "duration_ms": duration_ms,
            "transcript": str(transcript),
            "steps": [{"name": rt.mask(s.name), "status": s.status, "duration_ms": s.duration_ms,
                       "reason": rt.mask(s.status_reason) or None} for s in outcome.steps],
        }
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return outcome.exit_code


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
