"""The pre-commit hooks: what pre-commit runs for each one, on the files it would pass.

pre-commit calls `entry` with the staged files that match `files`, and fails the hook on a
non-zero exit or on a file the hook changed. The same commands run here on a clean file, a
file with an error and a file out of the canonical layout.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from frontend import runbook

ROOT = Path(__file__).resolve().parent.parent
HOOKS = {hook["id"]: hook for hook in yaml.safe_load(
    (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}

CLEAN = 'step hello "Hello" {\n  note "hello"\n}\n'
BROKEN = 'step hello "Hello" {\n  note "{{ nobody }}"\n}\n'
MESSY = 'step hello "Hello" {\n      note "hello"\n}\n'


def run_hook(hook_id: str, folder: Path, *names: str):
    """The hook's command on the files pre-commit would pass it, as pre-commit runs it."""
    hook = HOOKS[hook_id]
    files = [name for name in names if re.search(hook["files"], name)]
    command = shlex.split(hook["entry"])
    assert command[0] == "runbook"
    return runbook(*command[1:], *files, cwd=folder)


def test_the_hooks_are_declared_for_runbook_files():
    assert set(HOOKS) == {"runbook-check", "runbook-fmt"}
    for hook in HOOKS.values():
        assert hook["language"] == "python" and hook["files"] == r"\.runbook$"
        assert re.search(hook["files"], "ops/deploy.runbook")
        assert not re.search(hook["files"], "deploy.runbook.md")


def write(folder: Path, **files: str) -> list[str]:
    for name, text in files.items():
        (folder / f"{name}.runbook").write_text(text, encoding="utf-8")
    (folder / "README.md").write_text("not a runbook\n", encoding="utf-8")
    return [f"{name}.runbook" for name in files] + ["README.md"]


def test_runbook_check_hook_fails_on_an_error_only(tmp_path):
    names = write(tmp_path, clean=CLEAN, messy=MESSY)
    assert run_hook("runbook-check", tmp_path, *names).returncode == 0
    names = write(tmp_path, clean=CLEAN, broken=BROKEN)
    result = run_hook("runbook-check", tmp_path, *names)
    assert result.returncode == 2
    assert "broken.runbook:2:12" in result.stderr + result.stdout


def test_runbook_fmt_hook_rewrites_what_is_out_of_layout(tmp_path):
    names = write(tmp_path, clean=CLEAN, messy=MESSY)
    result = run_hook("runbook-fmt", tmp_path, *names)
    # pre-commit sees the change to messy.runbook and fails the hook; the next run passes.
    assert result.returncode == 0 and result.stdout == "reformatted messy.runbook\n"
    assert (tmp_path / "messy.runbook").read_text(encoding="utf-8") == CLEAN
    again = run_hook("runbook-fmt", tmp_path, *names)
    assert (again.returncode, again.stdout) == (0, "")
