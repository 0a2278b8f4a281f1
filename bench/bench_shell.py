"""Benchmark of the process boundary (the local executor, runbook_lang.executors.local, with
its output sinks) against the `sh` library.

    python bench/bench_shell.py [--calls 300] [--megabytes 400]

Needs the `sh` package, which the project itself does not depend on.

(a) per-call cost of a trivial command; (b) streaming a large output to a log, each case
in a fresh child interpreter that reports its own peak RSS; (c) what the `sh` library
does with timeouts, background processes and terminals. The figures in
docs/decisions.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbook_lang.evaluation.masking import Masker  # noqa: E402
from runbook_lang.executors import CommandSpec  # noqa: E402
from runbook_lang.executors.local import LocalExecutor  # noqa: E402
from runbook_lang.executors.streams import Output  # noqa: E402
from runbook_lang.store.files import FileLog  # noqa: E402


@dataclass
class Ran:
    """What a call tells: the digests, the capture."""

    stdout: object
    captured: str | None


def run_command(command: str, *, env, cwd: str, masker: Masker, stdout_log: Path | None,
                stderr_log: Path | None, capture: bool = False, timeout: float | None = None,
                grace: float = 5.0) -> Ran:
    """One command through the local executor, with the run's sinks (masking, digests, logs),
    as the interpreter runs it."""
    out = Output("stdout", masker.stream(), FileLog(stdout_log) if stdout_log else None,
                 None, capture)
    err = Output("stderr", masker.stream(), FileLog(stderr_log) if stderr_log else None)
    try:
        LocalExecutor(Path(cwd), env).run(CommandSpec(command, timeout=timeout, grace=grace),
                                          out, err)
    finally:
        for sink in (out, err):
            if sink.log is not None:
                sink.log.close()
    return Ran(out.digest(), out.captured())

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
SECRET = "s3cr3t-token-value"


# -- (a) per-call cost ----------------------------------------------------------------------


def per_call_ms(fn, calls: int) -> float:
    """Mean wall time of ``fn()`` in ms, after a few warm-up calls."""
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1000


def bench_calls(calls: int, workdir: str) -> list[tuple[str, float]]:
    import sh

    masker = Masker([SECRET])
    logs = Path(workdir) / "calls"

    def ours() -> None:
        run_command("true", env=ENV, cwd=workdir, masker=masker, stdout_log=None, stderr_log=None)

    def ours_logged() -> None:
        run_command(
            "true",
            env=ENV,
            cwd=workdir,
            masker=masker,
            stdout_log=logs / "o.log",
            stderr_log=logs / "e.log",
            capture=True,
        )

    return [
        (
            "subprocess.run(['sh','-c','true'])",
            per_call_ms(lambda: subprocess.run(["sh", "-c", "true"]), calls),
        ),
        ("run_command('true')", per_call_ms(ours, calls)),
        ("run_command('true'), 2 logs + capture", per_call_ms(ours_logged, calls)),
        ("sh.sh('-c','true')", per_call_ms(lambda: sh.sh("-c", "true"), calls)),
    ]


# -- (b) streaming --------------------------------------------------------------------------

# (case, output). Zeros hold no newline, which matters to a line-buffered reader; "lines"
# is text in 64-byte lines.
STREAM_CASES = [
    ("run_command, no secrets", "zeros"),
    ("run_command, 1 secret", "zeros"),
    ("run_command, 1 secret", "lines"),
    ("sh, _out=callback, defaults", "zeros"),
    ("sh, _out=callback, defaults", "lines"),
    ("sh, _out=callback, _tty_out=False, _out_bufsize=1MiB", "zeros"),
]
SOURCES = {
    "zeros": "head -c {size} /dev/zero",
    "lines": "yes 'a line of log output, 64 bytes long including the newline ....' "
    "| head -c {size}",
}


def stream_child(case: str, source: str, size: int, log: Path) -> dict:
    """Runs in a fresh interpreter: stream ``size`` bytes to ``log`` and report."""
    command = SOURCES[source].format(size=size)
    rss_before = _rss_kib()
    start = time.perf_counter()
    if case.startswith("run_command"):
        masker = Masker([] if "no secrets" in case else [SECRET])
        result = run_command(
            command, env=ENV, cwd=str(log.parent), masker=masker, stdout_log=log, stderr_log=None
        )
        streamed = result.stdout.bytes
    else:
        streamed = _sh_stream(command, log, tuned="_tty_out=False" in case)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "bytes": streamed,
        "seconds": seconds,
        "rss_before_kib": rss_before,
        "peak_rss_kib": peak,
    }


def _sh_stream(command: str, log: Path, tuned: bool) -> int:
    # Masking needs the bytes in Python, so the output goes through a callback rather than
    # straight into a file descriptor.
    import sh

    masker = Masker([SECRET])
    with log.open("wb") as out:

        def write(chunk: str | bytes) -> None:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            out.write(masker.mask_bytes(data))

        extra = {"_tty_out": False, "_out_bufsize": 1 << 20} if tuned else {}
        sh.sh("-c", command, _out=write, _decode_errors="replace", **extra)
    return log.stat().st_size


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bench_stream(megabytes: int, workdir: str) -> list[tuple[str, str, dict]]:
    rows = []
    log = Path(workdir) / "stream.log"
    for case, source in STREAM_CASES:
        argv = [
            sys.executable,
            __file__,
            "--stream-child",
            case,
            source,
            str(megabytes * 10**6),
            str(log),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        rows.append((case, source, json.loads(done.stdout)))
        log.unlink(missing_ok=True)
    return rows


# -- (c) behaviour of the sh library --------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _kill(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def timeout_survivors(workdir: str) -> tuple[int, int]:
    """How many of two backgrounded grandchildren outlive a 0.5 s timeout: (sh, ours)."""
    import sh

    survivors = []
    for which in ("sh", "ours"):
        pidfile = Path(workdir) / f"grandchildren-{which}"
        command = f"sleep 1000 & echo $! > {pidfile}; sleep 1000 & echo $! >> {pidfile}; wait"
        if which == "sh":
            try:
                sh.sh("-c", command, _timeout=0.5)
            except sh.TimeoutException:
                pass
        else:
            run_command(
                command,
                env=ENV,
                cwd=workdir,
                masker=Masker(),
                stdout_log=None,
                stderr_log=None,
                timeout=0.5,
                grace=1.0,
            )
        time.sleep(0.1)
        pids = [int(word) for word in pidfile.read_text().split()]
        survivors.append(sum(_alive(pid) for pid in pids))
        for pid in pids:
            _kill(pid)
    return survivors[0], survivors[1]


def post_exit_wait(workdir: str) -> tuple[float, float]:
    """Seconds until the call returns when a background process keeps stdout open."""
    import sh

    command = "sleep 1000 & echo $!"
    start = time.perf_counter()
    pid = int(str(sh.sh("-c", command)).split()[0])
    sh_seconds = time.perf_counter() - start
    _kill(pid)
    start = time.perf_counter()
    result = run_command(
        command,
        env=ENV,
        cwd=workdir,
        masker=Masker(),
        stdout_log=None,
        stderr_log=None,
        capture=True,
    )
    ours_seconds = time.perf_counter() - start
    _kill(int(result.captured.split()[0]))
    return sh_seconds, ours_seconds


def stdout_kind(workdir: str) -> tuple[str, str]:
    """What a command sees as its stdout by default: (sh, run_command)."""
    import sh

    probe = "test -t 1 && echo terminal || echo pipe"
    result = run_command(
        probe, env=ENV, cwd=workdir, masker=Masker(), stdout_log=None, stderr_log=None, capture=True
    )
    return str(sh.sh("-c", probe)).strip(), result.captured.strip()


def sh_defaults() -> dict:
    import sh

    args = sh.Command._call_args
    keys = (
        "tty_out",
        "timeout_signal",
        "new_session",
        "new_group",
        "out_bufsize",
        "internal_bufsize",
    )
    return {key: args[key] for key in keys} | {"version": sh.__version__}


# -- report ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=400)
    parser.add_argument("--stream-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stream_child:
        case, source, size, log = args.stream_child
        print(json.dumps(stream_child(case, source, int(size), Path(log))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-shell-") as workdir:
        report(args.calls, args.megabytes, workdir)


def report(calls: int, megabytes: int, workdir: str) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {os.uname().release}")
    print(f"\n(a) per call, mean of {calls}")
    for label, ms in bench_calls(calls, workdir):
        print(f"  {label:<45} {ms:8.3f} ms")

    print(f"\n(b) streaming {megabytes} MB of stdout to a log (fresh interpreter each)")
    print(f"  {'case':<53} {'output':<6} {'MB/s':>6} {'RSS before':>11} {'peak RSS':>11}")
    for case, source, row in bench_stream(megabytes, workdir):
        rate = row["bytes"] / 1e6 / row["seconds"]
        print(
            f"  {case:<53} {source:<6} {rate:6.0f} {row['rss_before_kib'] / 1024:7.1f} MiB"
            f" {row['peak_rss_kib'] / 1024:7.1f} MiB"
        )

    print("\n(c) behaviour")
    sh_left, ours_left = timeout_survivors(workdir)
    print(
        f"  grandchildren alive (of 2) after a 0.5 s timeout: sh {sh_left}, run_command {ours_left}"
    )
    sh_wait, ours_wait = post_exit_wait(workdir)
    print(
        f"  return time, background process holding stdout: sh {sh_wait:.2f} s, "
        f"run_command {ours_wait:.2f} s"
    )
    sh_kind, ours_kind = stdout_kind(workdir)
    print(f"  a command's stdout by default: sh {sh_kind}, run_command {ours_kind}")
    print(f"  sh defaults: {sh_defaults()}")


if __name__ == "__main__":
    main()
