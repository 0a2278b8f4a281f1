"""Which executor runs a step's commands, one per target for the whole run."""

from __future__ import annotations

from pathlib import Path

from ..executors import Executor
from ..executors.local import LocalExecutor


class Executors:
    """The run's executors: the local one, and one per remote target as steps need them.

    `interrupt` reaches every executor (it runs in the signal handler); `close` ends every
    connection at the end of the run.
    """

    def __init__(self, base_dir: Path) -> None:
        self.local = LocalExecutor(base_dir)
        self._open: dict[str, Executor] = {"local": self.local}

    def for_target(self, target: str | None) -> Executor:
        """The executor for a step instance's target (None: this machine)."""
        if target is None:
            return self.local
        return self._open[target]

    def interrupt(self) -> None:
        """Stop whatever command runs now, wherever it runs."""
        for executor in tuple(self._open.values()):
            executor.interrupt()

    def close(self) -> None:
        """Close every connection the run opened."""
        for executor in self._open.values():
            executor.close()
