"""Benchmark of the SSH executor against plain `ssh` with a ControlMaster in a shell loop.

    python bench/bench_ssh.py [--hosts 20] [--commands 10] [--rounds 3]

Both sides run against the same local test sshd (tests/sshfleet.py; needs OpenSSH's
server), with one alias per host. For each host, one after the other: connect (start a
master), run the commands one by one over it, disconnect. The executor side goes through
`SshConnections`/`SshExecutor` with its wrapper, payload and trailers; the shell side is

    ssh -fNM -S SOCK HOST; for i in 1..N: ssh -S SOCK HOST "echo $i"; ssh -S SOCK -O exit HOST

A third side is the whole `runbook run` command on a generated runbook whose one step runs
on every host (`on [...]`, `--forks 1`, so one host after the other as in the loop) with the
commands as its `run` statements: it adds the interpreter, the transcript (hash-chained
records, one log per command) and the display to the executor's cost.

Each side runs `--rounds` times, alternating; the median total is reported, with the time
per command (the total without connecting, which both sides pay alike, is measured too).
The method and figures are in docs/targets.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sshfleet import Fleet, find_sshd  # noqa: E402

from runbook_lang.executors import CommandSpec  # noqa: E402
from runbook_lang.executors.ssh import SshConnections  # noqa: E402
from runbook_lang.targets.connection import SshHost  # noqa: E402

SHELL_LOOP = r"""
set -e
for h in $HOSTS; do
  sock="$DIR/$h"
  t0=$(date +%s%N)
  ssh -F "$CONFIG" -o BatchMode=yes -o ControlMaster=yes -o ControlPersist=no \
      -o ControlPath="$sock" -fN "$h"
  t1=$(date +%s%N)
  i=0
  while [ $i -lt $COMMANDS ]; do
    ssh -F "$CONFIG" -o BatchMode=yes -o ControlMaster=no -o ControlPath="$sock" \
        "$h" "echo $i" > /dev/null
    i=$((i + 1))
  done
  t2=$(date +%s%N)
  ssh -F "$CONFIG" -o ControlPath="$sock" -O exit "$h" 2> /dev/null
  echo "$((t1 - t0)) $((t2 - t1))"
done
"""


CLI = "import sys; from runbook_lang.cli import main; sys.exit(main())"


class Null:
    """A sink that counts bytes."""

    def __init__(self) -> None:
        self.size = 0

    def take(self, chunk: bytes) -> None:
        self.size += len(chunk)

    def finish(self) -> None:
        pass


def executor_round(fleet: Fleet, hosts: list[str], commands: int) -> tuple[float, float]:
    """(total seconds, seconds spent in commands) through the executor."""
    in_commands = 0.0
    start = time.perf_counter()
    with SshConnections(config_file=str(fleet.config)) as conns:
        for name in hosts:
            executor = conns.executor(SshHost(name))
            executor.open()
            begin = time.perf_counter()
            for i in range(commands):
                result = executor.run(CommandSpec(f"echo {i}"), Null(), Null())
                assert result.code == 0, result
            in_commands += time.perf_counter() - begin
            executor.close()
    return time.perf_counter() - start, in_commands


def shell_round(fleet: Fleet, hosts: list[str], commands: int) -> tuple[float, float]:
    """(total seconds, seconds spent in commands) with plain ssh in a shell loop."""
    directory = tempfile.mkdtemp(prefix="rb-bench-", dir="/tmp")
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOSTS": " ".join(hosts),
           "DIR": directory, "CONFIG": str(fleet.config), "COMMANDS": str(commands)}
    try:
        start = time.perf_counter()
        proc = subprocess.run(["bash", "-c", SHELL_LOOP], env=env, capture_output=True,
                              text=True, check=True)
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    in_commands = sum(int(line.split()[1]) for line in proc.stdout.split("\n") if line) / 1e9
    return total, in_commands


def runbook_round(fleet: Fleet, hosts: list[str], commands: int) -> tuple[float, float]:
    """(total seconds, the same) for `runbook run --forks 1` of a step on every host."""
    directory = Path(tempfile.mkdtemp(prefix="rb-bench-", dir="/tmp"))
    names = ", ".join(f'"{h}"' for h in hosts)
    runs = "\n".join(f'  run "echo {i}"' for i in range(commands))
    (directory / "bench.runbook").write_text(
        f'step bench "Bench {{{{host}}}}" on [{names}] {{\n{runs}\n}}\n')
    try:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", CLI, "run", "bench.runbook",
                        "--forks", "1", "--ssh-config", str(fleet.config)], cwd=directory,
                       capture_output=True, check=True, env={"PATH": "/usr/bin:/bin",
                                                             "PYTHONPATH": str(ROOT)})
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--commands", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sshd = find_sshd()
    if sshd is None:
        sys.exit("sshd not found: apt-get install -y openssh-server")
    hosts = [f"h{i:02d}" for i in range(args.hosts)]
    root = Path(tempfile.mkdtemp(prefix="fleet-", dir="/tmp"))
    fleet = Fleet.start(root, sshd, hosts=tuple(hosts))
    try:
        executor_runs, shell_runs, runbook_runs = [], [], []
        for _ in range(args.rounds):
            executor_runs.append(executor_round(fleet, hosts, args.commands))
            shell_runs.append(shell_round(fleet, hosts, args.commands))
            runbook_runs.append(runbook_round(fleet, hosts, args.commands))
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
    count = args.hosts * args.commands
    print(f"{args.hosts} hosts x {args.commands} commands, median of {args.rounds} rounds")
    rows = []
    for label, runs in (("SshExecutor", executor_runs), ("ssh + ControlMaster (shell)",
                                                         shell_runs)):
        total = statistics.median(r[0] for r in runs)
        commands = statistics.median(r[1] for r in runs)
        rows.append((total, commands))
        print(f"  {label:28} total {total:6.2f} s   commands {commands:6.2f} s   "
              f"{commands / count * 1000:6.1f} ms/command")
    print(f"  ratio executor/shell: total {rows[0][0] / rows[1][0]:.2f}x, "
          f"commands {rows[0][1] / rows[1][1]:.2f}x")
    whole = statistics.median(r[0] for r in runbook_runs)
    print(f"  {'runbook run --forks 1':28} total {whole:6.2f} s   "
          f"{whole / args.hosts * 1000:6.0f} ms/host   ratio to shell {whole / rows[1][0]:.2f}x")


if __name__ == "__main__":
    main()
