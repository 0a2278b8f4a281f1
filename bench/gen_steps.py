"""Generate runbooks for the benchmarks.

    python bench/gen_steps.py [STEPS]          # the `check` runbook, default 5,000 steps
    python bench/gen_steps.py --trivial STEPS  # STEPS steps of run "true"
"""

from __future__ import annotations

import sys


def generate(steps: int) -> str:
    """A file of `steps` steps, each with a command, a capture, a timeout and a retry
    (five lines a step), for timing `runbook check`."""
    out = ['runbook "Generated" {\n  owner "bench"\n}\n', 'param who: string = "world"\n']
    for i in range(steps):
        out.append(
            f'step s{i} "Step {i} for {{{{who}}}}" {{\n'
            f'  run "echo {i} {{{{who}}}}" into out{i}\n'
            f"  timeout 30s\n"
            f"  retry 2 every 1s\n"
            f"}}\n"
        )
    return "".join(out)


def generate_trivial(steps: int) -> str:
    """A file of `steps` steps that each run `true`: what `runbook run` costs per step
    when the command itself costs next to nothing."""
    out = ['runbook "Trivial steps" {\n  owner "bench"\n}\n']
    out += [f'step s{i} "Step {i}" {{\n  run "true"\n}}\n' for i in range(steps)]
    return "".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--trivial"]:
        sys.stdout.write(generate_trivial(int(args[1]) if len(args) > 1 else 200))
    else:
        sys.stdout.write(generate(int(args[0]) if args else 5000))
