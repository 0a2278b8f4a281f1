"""Finding local run records beyond the working directory: every `.runbook/runs` folder
under the current repository, so that `runbook history` and `runbook resume FILE` see the
runs of the repository's runbooks wherever each was started from.

The repository is the nearest folder up from the working directory holding `.git`; outside
a repository, the working directory itself. The walk skips version-control, virtual
environment and dependency folders, and is bounded: a huge tree is cut off and said so.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..dataclass import dataclass, field

SKIPPED = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox",
           ".mypy_cache", ".ruff_cache", ".pytest_cache"}
MAX_FOLDERS = 20_000  # visited: beyond it the search stops and says where it stopped


@dataclass
class Found:
    """Where the search looked and what it found."""

    root: Path
    runs_dirs: list[Path] = field(default_factory=list)
    cut_short: bool = False

    def where(self) -> str:
        """The folders searched, for a message."""
        looked = ", ".join(str(_relative(d, self.root)) for d in self.runs_dirs) or \
            "no .runbook/runs folder"
        note = f" (stopped after {MAX_FOLDERS} folders)" if self.cut_short else ""
        return f"under {self.root}: {looked}{note}"


def repository_root(start: Path) -> Path:
    """The nearest folder up from `start` holding `.git`, else `start`."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def find_runs_dirs(start: Path | None = None) -> Found:
    """Every `.runbook/runs` folder under the repository that holds `start` (the working
    directory by default), the working directory's own first."""
    start = (start or Path.cwd()).resolve()
    root = repository_root(start)
    found = Found(root)
    own = start / ".runbook" / "runs"
    if own.is_dir():
        found.runs_dirs.append(own)
    visited = 0
    for folder, subfolders, _files in os.walk(root, onerror=lambda _error: None):
        visited += 1
        if visited > MAX_FOLDERS:
            found.cut_short = True
            break
        if ".runbook" in subfolders:
            runs = Path(folder) / ".runbook" / "runs"
            if runs.is_dir() and runs not in found.runs_dirs:
                found.runs_dirs.append(runs)
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED and d != ".runbook")
    return found


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path
