"""runbook-lang: executable runbooks with checks, gates, rollback and an audit transcript.

The front door chains the pipeline stages: `load()` parses a file and its imports,
`check()` adds the static analysis, `check_text()` does the same for text that is not (yet)
on disk, as an editor holds it. Heavy modules are imported on first use so that
`runbook --version` starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "check", "check_text", "load"]


def load(path):
    """Parse a runbook and the modules it imports (a `loader.Module`)."""
    from pathlib import Path

    from .syntax.loader import Loader

    return Loader().load(Path(path), str(path))


def check(path):
    """Load and analyse a runbook: (module, diagnostics)."""
    from .analysis.analyzer import analyse

    module = load(path)
    return module, analyse(module)


def check_text(path, text: str, overlays=None, cache=None):
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
