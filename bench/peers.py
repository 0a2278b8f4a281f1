"""The same N trivial steps written for runbook and for each peer, and how to run them.

Every tool is given work that starts exactly one `sh -c true` process per step, so that
what differs between them is each tool's own cost per step:

- a shell script: `sh -c true` on N lines (the floor: nothing but the processes);
- just: N recipes of one line `true` and a first recipe `all` that depends on them in
  order; just runs each recipe line as `sh -cu true`;
- Task: N tasks and a `default` task calling them in order. Task runs commands in its
  own built-in shell, which does `true` without starting a process, so the command is
  written `sh -c true` to give it the same process per step as the others;
- Ansible: one play on the implicit localhost (local connection, `gather_facts: false`)
  with one `ansible.builtin.shell: "true"` task per step. `shell` rather than `command`
  because, like runbook's `run`, it hands the string to `/bin/sh -c`; either way the
  module's own Python start dominates. Pipelining is on, Ansible's documented speed-up
  (it saves copying the module to a temporary file for every task);
- runbook: N steps of `run "true"`, each run as `/bin/sh -c true`, transcript on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gen_steps import generate_trivial
from measure import first_line, which


@dataclass(frozen=True)
class Tool:
    """A tool that can run the N steps: how to write its files and how to start it."""

    name: str
    program: str
    install: str  # how to get it, said when it is missing
    write: Callable[[Path, int], list[str]]  # writes the files into a directory; the argv
    version_args: tuple[str, ...] = ("--version",)
    env: Callable[[Path], dict[str, str]] | None = None

    def path(self) -> str | None:
        """Where the program is, or None when it is not installed."""
        return which(self.program)

    def command(self, directory: Path, steps: int) -> tuple[list[str], dict[str, str] | None]:
        """Write the files for `steps` steps into `directory`; the argv and environment
        that run them there."""
        directory.mkdir(parents=True, exist_ok=True)
        argv = self.write(directory, steps)
        env = None if self.env is None else os.environ | self.env(directory)
        return argv, env

    def version(self) -> str:
        """The tool's version line, or "" when it is missing."""
        found = self.path()
        return first_line([found, *self.version_args]) if found else ""


def _names(steps: int) -> list[str]:
    return [f"s{i}" for i in range(steps)]


def write_shell(directory: Path, steps: int) -> list[str]:
    """A shell script that runs `sh -c true` once a line."""
    script = directory / "steps.sh"
    script.write_text("#!/bin/sh\nset -e\n" + "sh -c true\n" * steps)
    return ["/bin/sh", str(script)]


def write_just(directory: Path, steps: int) -> list[str]:
    """A justfile whose first recipe runs the N one-line recipes in order."""
    names = _names(steps)
    recipes = "".join(f"{name}:\n    true\n\n" for name in names)
    (directory / "justfile").write_text(f"all: {' '.join(names)}\n\n{recipes}")
    return [str(which("just")), "--justfile", str(directory / "justfile"), "all"]


def write_task(directory: Path, steps: int) -> list[str]:
    """A Taskfile whose default task calls the N one-command tasks in order (not as
    `deps`, which Task runs in parallel)."""
    names = _names(steps)
    calls = "".join(f"      - task: {name}\n" for name in names)
    tasks = "".join(f"  {name}:\n    cmds:\n      - sh -c true\n" for name in names)
    taskfile = directory / "Taskfile.yml"
    taskfile.write_text(f"version: '3'\ntasks:\n  default:\n    cmds:\n{calls}{tasks}")
    return [str(which("task")), "--taskfile", str(taskfile), "default"]


def write_ansible(directory: Path, steps: int) -> list[str]:
    """A playbook of one play on localhost with one shell task per step."""
    tasks = "".join(
        f"    - name: {name}\n      ansible.builtin.shell: \"true\"\n" for name in _names(steps)
    )
    playbook = directory / "playbook.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n" + tasks
    )
    (directory / "ansible.cfg").write_text("")
    return [str(which("ansible-playbook")), str(playbook)]


def ansible_env(directory: Path) -> dict[str, str]:
    """Keep Ansible's state in the temporary directory, its configuration empty (no
    /etc/ansible/ansible.cfg), pipelining on, and its warnings about the implicit
    localhost quiet."""
    return {
        "ANSIBLE_CONFIG": str(directory / "ansible.cfg"),
        "ANSIBLE_HOME": str(directory / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(directory / "ansible-tmp"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_NOCOLOR": "1",
    }


def runbook_argv() -> list[str]:
    """How a person starts runbook: the `runbook` script of this Python's environment,
    else `python -m runbook_lang`."""
    script = which("runbook")
    return [script] if script else [sys.executable, "-m", "runbook_lang"]


def write_runbook(directory: Path, steps: int) -> list[str]:
    """N steps of `run "true"`, run with the transcript in the directory."""
    book = directory / "steps.runbook"
    book.write_text(generate_trivial(steps))
    return [*runbook_argv(), "run", str(book), "--transcript-dir", str(directory / "runs")]


SHELL = Tool("shell script", "sh", "", write_shell)
RUNBOOK = Tool("runbook run", "runbook", "pip install -e .", write_runbook)
PEERS = {
    "just": Tool("just", "just", "pip install rust-just", write_just),
    "task": Tool("task", "task", "pip install go-task-bin", write_task),
    "ansible": Tool(
        "ansible-playbook", "ansible-playbook", "pip install ansible-core", write_ansible,
        env=ansible_env,
    ),
}


def dash_version() -> str:
    """The Debian package version of /bin/sh when it is dash, else where /bin/sh points."""
    target = os.path.realpath("/bin/sh")
    if target.endswith("dash"):
        version = first_line(["dpkg-query", "-W", "-f", "${Version}\n", "dash"])
        if version:
            return f"dash {version}"
    return target
