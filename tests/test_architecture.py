"""The package's shape: no import circles, and commands that do not reach into each other.

Every import counts, also one inside a function: a lazy import hides a circle from the
interpreter, not from a reader.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "runbook_lang"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Imports under `if TYPE_CHECKING:` exist for the type checker only.
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test).endswith("TYPE_CHECKING")
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                # `from . import nodes` imports a module; `from . import Thing` a name of
                # the package.
                module = f"{target}.{alias.name}"
                found.add(module if module in known else target)
    return {target for target in found if target in known and target != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_commands_do_not_import_each_other():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("runbook_lang.commands."):
            others = {t for t in targets if t.startswith("runbook_lang.commands")}
            assert not others, f"{name} imports {sorted(others)}"


def test_errors_imports_nothing_of_ours():
    assert import_graph()["runbook_lang.errors"] == set()


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# Reading, checking and running a runbook: the commands and what they load on the way.
WITHOUT_PYDANTIC = """
import json, sys
from runbook_lang.cli import main
import runbook_lang.commands.check, runbook_lang.commands.run
codes = [main(["--version"]), main(["check", "one.runbook"]),
         main(["check", "--ast", "one.runbook"]), main(["run", "one.runbook"])]
heavy = ("pydantic", "dataclasses", "inspect", "typing", "getpass")
# What only a runbook with hosts, or a team store, needs.
elsewhere = ("runbook_lang.targets", "runbook_lang.store.pg", "runbook_lang.executors.ssh")
before = sorted(m for m in sys.modules if m.partition(".")[0] in heavy
                or m.startswith(elsewhere))
from runbook_lang.syntax.schema import json_schema
json_schema()
after = sorted(m for m in sys.modules if m.partition(".")[0] == "pydantic")
print(json.dumps({"codes": codes, "before": before, "after": bool(after)}))
"""


def test_reading_checking_and_running_never_import_pydantic(tmp_path: Path) -> None:
    """The AST is plain records: pydantic loads only to write the AST's JSON Schema. Nor do
    these commands load `dataclasses` (and with it `inspect`): runbook_lang.dataclass
    makes the package's data classes; nor `typing` (runbook_lang.hints), nor the code of
    hosts and of the team store, for a runbook on this machine with the local store."""
    import json
    import subprocess
    import sys

    (tmp_path / "one.runbook").write_text('step a "A" {\n  run "true"\n}\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", WITHOUT_PYDANTIC], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["codes"] == [0, 0, 0, 0], result.stdout + result.stderr
    assert found["before"] == []
    # The same look finds pydantic once the schema is asked for: the check above can fail.
    assert found["after"] is True


def test_the_package_makes_its_data_classes_without_the_standard_module():
    """Every module declares its data classes with runbook_lang.dataclass, so that no command
    pays for compiling methods of classes it never builds (docs/decisions.md)."""
    package = Path(__file__).resolve().parent.parent / "runbook_lang"
    users = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                   if re.search(r"^\s*(from dataclasses import|import dataclasses)",
                                path.read_text(encoding="utf-8"), re.M))
    assert users == []


def test_a_pattern_compiled_later_answers_as_the_compiled_one():
    """Module-level regular expressions compile on first use (runbook_lang.lazy); after it,
    each method is the compiled pattern's own."""
    import re

    from runbook_lang.lazy import compile_later

    later, now = compile_later(r"(\w+)=(\d+)", re.ASCII), re.compile(r"(\w+)=(\d+)", re.ASCII)
    assert "match" not in vars(later)  # nothing compiled yet
    text = "a=1 b=22 é=3"
    assert later.match(text).groups() == now.match(text).groups()  # type: ignore[union-attr]
    assert later.fullmatch("b=22") is not None and later.fullmatch("b=22 ") is None
    assert later.search(text, 1).span() == now.search(text, 1).span()  # type: ignore[union-attr]
    assert later.sub(r"\2", text) == now.sub(r"\2", text)
    assert later.split(text) == now.split(text)
    assert later.findall(text) == now.findall(text)
    assert [m.span() for m in later.finditer(text)] == [m.span() for m in now.finditer(text)]
    assert (later.pattern, later.flags, later.groups) == (now.pattern, now.flags, now.groups)
    # Bound once into the object: later calls no longer go through its lookup.
    assert {"match", "search", "sub"} <= set(vars(later))
