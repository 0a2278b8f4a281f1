"""What a task asks of its arguments, learnt from its parameters' defaults and its body.

Task parameters have no declared types. A parameter's default gives it one (`deadline =
60s` is a duration), and so does the way the body uses it: `within deadline` needs a
duration, `expect status == wanted` needs a value comparable with an int, and passing it to
another task passes on that task's needs. A call whose argument cannot meet them is
reported at the argument (E214), where `runbook run` would fail in the middle of the task.

The same walk learns where a parameter is interpolated into a command line, so that a
secret passed as an argument is warned about at the call and where it lands (W301).
This module holds the findings; `tasks.py` learns them.
"""

from __future__ import annotations

from pathlib import PurePath

from ..dataclass import dataclass, field
from ..syntax import nodes as n

NUMERIC = frozenset({"int", "float", "number"})


@dataclass(frozen=True)
class Need:
    """A type a parameter must have (or, with `compare`, be comparable with), and why."""

    type: str
    what: str  # how the body uses the parameter, e.g. "`within`"
    path: str  # where: the file of the task and the span of the use
    span: n.Span
    compare: bool = False

    def place(self, here: str) -> str:
        """Where the use is: `line L:C` in the file `here`, else `line L:C of NAME` (the
        module's file name: its shown path depends on the working directory, which differs
        between `check` and an editor)."""
        where = f"line {self.span.line}:{self.span.column}"
        return where if self.path == here else f"{where} of {PurePath(self.path).name}"

    def met_by(self, found: str) -> bool:
        """Whether a value of type `found` meets the need."""
        if self.compare or self.what == "its default":
            return found == self.type or (found in NUMERIC and self.type in NUMERIC)
        return satisfies(found, self.type)


@dataclass(frozen=True)
class Landing:
    """A place where a parameter is interpolated into a command line."""

    path: str
    span: n.Span


@dataclass
class Signature:
    """Per parameter: what its value must be, and where it reaches a command line."""

    needs: dict[str, list[Need]] = field(default_factory=dict)
    lands: dict[str, list[Landing]] = field(default_factory=dict)


def satisfies(found: str, wanted: str) -> bool:
    """Whether a value of type `found` may stand where `wanted` is expected (as the checker
    accepts it: a number where an int is wanted is left to the run)."""
    if found == wanted or wanted == "any":
        return True
    if wanted == "number" and found in NUMERIC:
        return True
    return wanted == "int" and found == "number"
