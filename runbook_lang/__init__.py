"""runbook-lang: executable runbooks with checks, gates, rollback and an audit transcript.

The front door chains the pipeline's stages (parse → analyse → plan → execute → record):

- `load(path)` parses a file and the modules it imports;
- `check(path)` adds the static analysis: (module, diagnostics); `check_text(path, text)`
  does the same for text not (yet) on disk, as an editor holds it;
- `plan(request)` walks the runbook without effects: what `--dry-run` prints;
- `run(request, store)` runs it for real and records it;
- `resume(request, store)` continues a run; `approve(request, store)` decides at a gate.

The `commands/` modules only turn arguments into these calls and results into output. Heavy
modules are imported on first use so that `runbook --version` starts fast.
"""

from __future__ import annotations

from .version import __version__

# Not `typing.TYPE_CHECKING`: importing typing is a tenth of `runbook --version`.
TYPE_CHECKING = False

__all__ = ["__version__", "approve", "check", "check_text", "load", "plan", "resume", "run"]

if TYPE_CHECKING:
    from .engine.approve import ApproveRequest
    from .engine.plan import Plan
    from .engine.resumption import AlreadySucceeded, ResumeRequest
    from .engine.session import RunRequest, RunResult
    from .store import RunStore
    from .syntax.diagnostics import Diagnostic
    from .syntax.loader import Module


def load(path) -> Module:
    """Parse a runbook and the modules it imports (raises LoadError if unreadable)."""
    from pathlib import Path

    from .syntax.loader import Loader

    return Loader().load(Path(path), str(path))


def check(path) -> tuple[Module, list[Diagnostic]]:
    """Load and analyse a runbook: (module, diagnostics)."""
    from .analysis.analyzer import analyse

    module = load(path)
    return module, analyse(module)


def check_text(path, text: str, overlays=None, cache=None) -> tuple[Module, list[Diagnostic]]:
    """Analyse `text` as if it were the file at `path`: (module, diagnostics).

    Its imports are read from disk, relative to `path` as usual, except those named in
    `overlays` (a mapping of path to text, such as an editor's other unsaved buffers), which
    are read from there. Diagnostics are those of `check()`, located at `str(path)` for the
    text itself; an import that cannot be read is a diagnostic at the import, as there.
    `cache`, a dict kept by the caller between calls, saves re-parsing imported files that
    have not changed on disk.
    """
    from pathlib import Path

    from .analysis.analyzer import analyse
    from .syntax.loader import Loader

    texts = {Path(key).resolve(): value for key, value in (overlays or {}).items()}
    texts[Path(path).resolve()] = text
    module = Loader(texts, cache).load(Path(path), str(path))
    return module, analyse(module)


def plan(request: RunRequest) -> Plan:
    """The plan of a run: every step, its resolved commands, gates and rollback (dry-run).

    Raises Refused (StaticErrors with diagnostics) for anything a run would refuse."""
    from .engine.session import plan_request

    return plan_request(request)


def run(request: RunRequest, store: RunStore) -> RunResult:
    """Run a runbook for real, recording it in `store`; raises Refused before any step."""
    from .engine.session import run_request

    return run_request(request, store)


def resume(request: ResumeRequest, store: RunStore, display_for=None,
           clock=None) -> RunResult | AlreadySucceeded:
    """Continue an interrupted, failed or paused run from its first unfinished step."""
    from .engine.resumption import resume_run
    from .reporting.display import Display

    return resume_run(request, store, display_for or (lambda options: Display()), clock)


def approve(request: ApproveRequest, store: RunStore, clock=None) -> str:
    """Keep a gate decision for a run that waits; returns what to tell the person."""
    from .engine.approve import approve as approve_run

    return approve_run(request, store, clock)
