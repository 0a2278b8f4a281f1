"""Helpers for the front-end tests: fixture folders, `# expect:` lines, the `runbook` command.

A fixture under `tests/fixtures/{invalid,warnings}/` starts with one comment line per
diagnostic it must produce, in the order `runbook check` reports them:

    # expect: E200 7:16 undefined name `relese`
    # expect: E221 modules/cycle_b.runbook:1:8 import cycle: …
    # expect: E001 - not a text file

that is the code, where (`LINE:COLUMN` in the fixture itself, `PATH:LINE:COLUMN` in a module
it imports, relative to the fixture's folder, or `-` for no position) and the text the message
must contain, which names the culprit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import call_main, decode

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VALID = sorted(p for p in (FIXTURES / "valid").glob("*.runbook") if p.is_file())
INVALID = sorted(p for p in (FIXTURES / "invalid").glob("*.runbook") if p.is_file())
WARNINGS = sorted(p for p in (FIXTURES / "warnings").glob("*.runbook") if p.is_file())

_EXPECT = re.compile(rb"^# expect: ([EW]\d{3}) (-|(?:(\S+):)?(\d+):(\d+)) (.+)$")


@dataclass(frozen=True)
class Expected:
    """One diagnostic a fixture announces in its `# expect:` lines."""

    code: str
    path: str | None  # None: the fixture itself
    line: int | None
    column: int | None
    culprit: str

    def where(self) -> str:
        """`LINE:COLUMN` or `PATH:LINE:COLUMN`, as written in the fixture."""
        if self.line is None:
            return "-"
        place = f"{self.line}:{self.column}"
        return f"{self.path}:{place}" if self.path else place


def expectations(path: Path) -> list[Expected]:
    """The `# expect:` lines at the top of a fixture (read as bytes: some are not UTF-8)."""
    found = []
    for raw in path.read_bytes().splitlines():
        match = _EXPECT.match(raw)
        if match is None:
            break
        code, place, where, line, column, culprit = match.groups()
        found.append(Expected(
            code.decode(), where.decode() if where else None,
            int(line) if place != b"-" else None, int(column) if place != b"-" else None,
            culprit.decode()))
    return found


def ids(paths: list[Path]) -> list[str]:
    """Test ids: the fixture's name without `.runbook`."""
    return [p.stem for p in paths]


def runbook_command() -> list[str]:
    """The installed `runbook` console script beside this Python (else `python -m`)."""
    script = Path(sys.executable).with_name("runbook")
    return [str(script)] if script.exists() else [sys.executable, "-m", "runbook_lang"]


def user_env(**extra: str) -> dict[str, str]:
    """A user's environment, without colour and without the debug switch."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update(NO_COLOR="1", LC_ALL="C.UTF-8", **extra)
    return env


def runbook(*args: str | Path, cwd: Path, timeout: float = 60,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """`runbook ARGS…` in `cwd`, in this process (see harness.py); text output, undecodable
    bytes replaced, exactly as `runbook_process` gives it."""
    call = call_main(args, cwd=cwd, env=env or user_env(), timeout=timeout,
                     program=runbook_command()[0])
    return subprocess.CompletedProcess(["runbook", *map(str, args)], call.exit_code,
                                       decode(call.stdout, "replace"),
                                       decode(call.stderr, "replace"))


def runbook_process(*args: str | Path, cwd: Path, timeout: float = 60,
                    stdin=subprocess.DEVNULL,
                    env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `runbook` command in `cwd`; text output (undecodable bytes replaced)."""
    return subprocess.run([*runbook_command(), *map(str, args)], cwd=cwd, env=env or user_env(),
                          capture_output=True, timeout=timeout, stdin=stdin, text=True,
                          encoding="utf-8", errors="replace")


def copy_folder(kind: str, target: Path) -> Path:
    """A copy of a fixture folder (with its modules/) under `target`, to run in."""
    destination = target / kind
    shutil.copytree(FIXTURES / kind, destination)
    return destination


def strip_spans(value):
    """A JSON value without any `span` or `…_span` key (places), at any depth."""
    if isinstance(value, dict):
        return {k: strip_spans(v) for k, v in value.items()
                if k != "span" and not k.endswith("_span")}
    if isinstance(value, list):
        return [strip_spans(v) for v in value]
    return value


def compact(value) -> str:
    """Compact JSON text, as stored in the AST snapshots."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
