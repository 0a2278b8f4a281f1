"""runbook-lang: executable runbooks with checks, gates, rollback and an audit transcript.

The front door chains the pipeline stages: `load()` parses a file and its imports,
`check()` adds the static analysis. Heavy modules are imported on first use so that
`runbook --version` starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "check", "load"]


def load(path):
    """Parse a runbook and the modules it imports (a `loader.Module`)."""
    from pathlib import Path

    from .loader import Loader

    return Loader().load(Path(path), str(path))


def check(path):
    """Load and analyse a runbook: (module, diagnostics)."""
    from .analyzer import analyse

    module = load(path)
    return module, analyse(module)
