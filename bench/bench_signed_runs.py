"""What signing costs a real run: `runbook run`, `approve`, `resume` and `verify` end to end.

    python bench/bench_signed_runs.py [--rounds 15]

Each round, in a fresh temporary directory with keys made by ssh-keygen: a three-step run
without and with `--sign-with` (a probe before the first step, a seal at the end), a
paused run approved twice under `signers` (`runbook approve` signs and checks), resumed
with a seal, then `runbook verify` with and without `--signers` (seal and two decisions).
Prints the median wall time of each command in ms: a whole process each, Python start-up
and ssh-keygen calls included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNBOOK = Path(sys.executable).with_name("runbook")
STEPS = """runbook "Steps" {
  signers "allowed_signers"
}
step one "One" { run "true" }
step two "Two" { run "true" }
step three "Three" { run "true" }
"""
GATE = """runbook "Gate" {
  signers "allowed_signers"
}
step prepare "Prepare" { run "true" }
gate release "Release" {
  approvers ["alice", "bob"]
  require 2
  self_approval false
}
step release_it "Release it" { run "true" }
"""


def timed(cwd: Path, *args: str, expect: int = 0) -> float:
    env = {**os.environ, "RUNBOOK_USER": "op", "NO_COLOR": "1"}
    env.pop("SSH_AUTH_SOCK", None)
    started = time.perf_counter()
    done = subprocess.run([str(RUNBOOK), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != expect:
        raise SystemExit(f"runbook {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return elapsed


def one_round(root: Path, times: dict[str, list[float]]) -> None:
    for name in ("op", "alice", "bob"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                       check=True)
    (root / "allowed_signers").write_text("".join(
        f"{name} {' '.join((root / f'{name}.pub').read_text().split()[:2])}\n"
        for name in ("op", "alice", "bob")))
    (root / "steps.runbook").write_text(STEPS)
    (root / "gate.runbook").write_text(GATE)
    times["run, no key"].append(timed(root, "run", "steps.runbook"))
    times["run --sign-with"].append(timed(root, "run", "steps.runbook", "--sign-with", "op"))
    times["run to the gate, --sign-with"].append(
        timed(root, "run", "gate.runbook", "--sign-with", "op", expect=3))
    run_id = sorted((root / ".runbook" / "runs").iterdir())[-1].name
    times["approve, signed and checked"].append(
        timed(root, "approve", run_id, "release", "--as", "alice", "--key", "alice"))
    timed(root, "approve", run_id, "release", "--as", "bob", "--key", "bob")
    times["resume, 2 signed votes, --sign-with"].append(
        timed(root, "resume", run_id, "--sign-with", "op"))
    times["verify"].append(timed(root, "verify", run_id))
    times["verify --signers (seal + 2 votes)"].append(
        timed(root, "verify", run_id, "--signers", "allowed_signers"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-signed-") as scratch:
            for key in ("run, no key", "run --sign-with", "run to the gate, --sign-with",
                        "approve, signed and checked", "resume, 2 signed votes, --sign-with",
                        "verify", "verify --signers (seal + 2 votes)"):
                times.setdefault(key, [])
            one_round(Path(scratch), times)
    load = os.getloadavg()[0]
    print(f"median of {rounds} rounds, load average {load:.1f}")
    for key, values in times.items():
        print(f"{key:40} {statistics.median(values):6.0f} ms")


if __name__ == "__main__":
    main()
