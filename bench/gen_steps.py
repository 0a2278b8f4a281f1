"""Generate a runbook with N steps (default 5,000, about 25,000 lines) for benchmarks."""

from __future__ import annotations

import sys


def generate(steps: int) -> str:
    """A file of `steps` steps, each with a command, a capture, a timeout and a check."""
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


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    sys.stdout.write(generate(count))
