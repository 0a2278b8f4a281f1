"""Timing whole processes, and the figures and targets a benchmark reports.

Every figure is the median of several whole-process runs: a run is timed from just before
the process is started to the moment `wait4` reaps it, so interpreter start-up, imports
and exit are all part of it, as they are for a person typing the command. `wait4` also
gives the peak resident memory of the process and of every descendant it waited for.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

K = TypeVar("K")


class BenchError(Exception):
    """A measured command did not do what it was asked to (its timing would mean nothing)."""


@dataclass(frozen=True)
class Sample:
    """One whole-process run: wall seconds, exit code and peak RSS in MiB."""

    seconds: float
    exit_code: int
    peak_rss_mib: float


@dataclass
class Figure:
    """A measured value: the median of `samples`, in `unit`."""

    key: str
    label: str
    value: float
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""


@dataclass
class Target:
    """A figure compared with the project's bar: `value OP limit` must hold."""

    key: str
    label: str
    value: float | None
    op: str  # "<=" or ">="
    limit: float
    unit: str

    @property
    def passed(self) -> bool | None:
        """True or False; None when the figure could not be measured (a peer is missing)."""
        if self.value is None:
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def as_dict(self) -> dict:
        """The target as JSON-ready data, its verdict included."""
        return asdict(self) | {"passed": self.passed}


@dataclass
class Part:
    """What one part of the benchmark measured: figures, targets and notes (a peer that
    was skipped, and why)."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def figure(self, key: str, label: str, value: float, unit: str,
               samples: Sequence[float] = (), note: str = "") -> Figure:
        """Add a figure and return it."""
        fig = Figure(f"{self.name}.{key}", label, value, unit, list(samples), note)
        self.figures.append(fig)
        return fig

    def target(self, key: str, label: str, value: float | None, op: str, limit: float,
               unit: str) -> Target:
        """Add a target and return it."""
        tgt = Target(f"{self.name}.{key}", label, value, op, limit, unit)
        self.targets.append(tgt)
        return tgt


def run_once(
    cmd: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    expect_exit: int = 0,
) -> Sample:
    """Run `cmd` once with stdout discarded; raise BenchError unless it exits `expect_exit`.

    stderr goes to a temporary file so that a failure can say why.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                list(cmd), cwd=cwd, env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        except OSError as exc:
            raise BenchError(f"{cmd[0]}: cannot start: {exc}") from exc
        # Reap it ourselves: wait4 is the one call that returns the child's rusage.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != expect_exit:
            err.seek(0)
            tail = err.read()[-800:].decode(errors="replace").strip()
            raise BenchError(
                f"{' '.join(cmd)} exited {code} (expected {expect_exit})"
                + (f":\n{tail}" if tail else "")
            )
    # Linux reports ru_maxrss in KiB.
    return Sample(seconds, code, usage.ru_maxrss / 1024)


def interleaved(
    cases: Mapping[K, Callable[[], Sample]], runs: int, warmup: bool = True
) -> dict[K, list[Sample]]:
    """Run every case `runs` times, taking turns (a, b, c, a, b, c, ...), after one untimed
    warm-up round. Taking turns spreads a change in the machine's load over all cases, so
    that the ratios between them stay fair even when the absolute figures drift."""
    if warmup:
        for case in cases.values():
            case()
    samples: dict[K, list[Sample]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, case in cases.items():
            samples[name].append(case())
    return samples


def median(samples: Sequence[Sample]) -> float:
    """Median wall time of the samples, in seconds."""
    return statistics.median(s.seconds for s in samples)


def which(program: str) -> str | None:
    """The program's path: next to this Python first (a venv's bin/ need not be on PATH),
    then on PATH."""
    beside = Path(sys.executable).parent / program
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(program)


def first_line(cmd: Sequence[str]) -> str:
    """The first line a command prints (a version string), or "" if it cannot run."""
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else ""


# Settings of this shell that a person's terminal does not have and that change what is
# measured: without bytecode caching every run recompiles our modules (and Ansible's).
UNUSUAL_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONPYCACHEPREFIX")


def clean_environment() -> list[str]:
    """Remove UNUSUAL_ENV from this process's environment, which every measured process
    inherits, so that they run as an installed tool does: from cached bytecode (written
    by the warm-up run where missing). Returns the names that were set."""
    removed = [name for name in UNUSUAL_ENV if name in os.environ]
    for name in removed:
        del os.environ[name]
    return removed


def machine_info() -> dict:
    """What the figures were measured on."""
    info: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sh": os.path.realpath("/bin/sh"),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mib"] = int(line.split()[1]) // 1024
                break
    return info
