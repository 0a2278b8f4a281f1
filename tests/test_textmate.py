"""The VS Code extension: its manifest, and its TextMate grammar run by VS Code's own engine.

vscode-textmate and vscode-oniguruma (what VS Code itself uses) are installed from the npm
registry into a temporary folder; without node and npm these tests are skipped, and say so.
Every shipped runbook must end with no string or interpolation left open and no token
marked invalid; the scopes of a sample are checked one by one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from frontend import FIXTURES, user_env

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR = EXTENSION / "syntaxes" / "runbook.tmLanguage.json"
SHIPPED = sorted((ROOT / "examples").rglob("*.runbook")) + sorted(
    (ROOT / "stdlib").glob("*.runbook")) + sorted((FIXTURES / "valid").rglob("*.runbook"))
SAMPLE = FIXTURES / "highlight" / "sample.runbook"


def test_the_manifest_names_files_that_exist():
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".runbook"]
    assert (EXTENSION / language["configuration"]).is_file()
    (grammar,) = manifest["contributes"]["grammars"]
    assert (EXTENSION / grammar["path"]).resolve() == GRAMMAR
    assert json.loads(GRAMMAR.read_text(encoding="utf-8"))["scopeName"] == grammar["scopeName"]
    assert (EXTENSION / manifest["main"]).is_file()
    assert "vscode-languageclient" in manifest["dependencies"]
    settings = manifest["contributes"]["configuration"]["properties"]
    assert settings["runbook.server.command"]["default"] == ["runbook", "lsp"]
    json.loads((EXTENSION / "language-configuration.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Path:
    """A folder of node modules holding vscode-textmate and vscode-oniguruma."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the TextMate grammar")
    folder = tmp_path_factory.mktemp("textmate")
    installed = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(folder),
         "vscode-textmate@9", "vscode-oniguruma@2"],
        capture_output=True, text=True, env=user_env(), timeout=300)
    if installed.returncode != 0:
        pytest.skip("cannot install vscode-textmate from the npm registry:\n"
                    + installed.stderr[-2000:])
    return folder / "node_modules"


def tokenize(engine: Path, *files: Path) -> dict:
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "textmate_tokenize.js"), str(GRAMMAR), *map(str, files)],
        capture_output=True, text=True, env=user_env(NODE_PATH=str(engine)), timeout=120)
    assert result.returncode == 0, result.stderr
    return {Path(name): value for name, value in json.loads(result.stdout).items()}


def test_every_shipped_file_closes_what_it_opens(engine):
    results = tokenize(engine, *SHIPPED)
    assert len(results) == len(SHIPPED) > 60
    unclosed = [str(path.relative_to(ROOT)) for path, r in results.items() if r["open"]]
    assert unclosed == []
    invalid = [(str(path.relative_to(ROOT)), text) for path, r in results.items()
               for text, scope in r["tokens"] if scope.startswith("invalid")]
    assert invalid == []


def test_the_scopes_of_a_sample(engine):
    tokens = [tuple(pair) for pair in tokenize(engine, SAMPLE)[SAMPLE]["tokens"]]
    for expected in [
        ("# A sample: keywords, strings with interpolation, durations, comments.",
         "comment.line.number-sign.runbook"),
        ("import", "storage.type.runbook"),
        ("step", "storage.type.runbook"),
        ("deploy", "entity.name.section.runbook"),
        ("string", "support.type.runbook"),
        ("pattern", "keyword.other.attribute.runbook"),
        ("every", "variable.other.definition.runbook"),  # `let every = 2`: a name
        ("{{", "punctuation.section.interpolation.begin.runbook"),
        ("lower", "support.function.builtin.runbook"),
        ("\\{{", "constant.character.escape.runbook"),
        ("1h30m", "constant.numeric.duration.runbook"),
        ("250ms", "constant.numeric.duration.runbook"),
        ("2.5", "constant.numeric.runbook"),
        ("tolerate", "keyword.other.runbook"),
        ("get", "support.constant.http-method.runbook"),
        ("body", "variable.other.runbook"),  # the probe's result, not the attribute
        ("contains", "keyword.operator.word.runbook"),
        ("rollback", "constant.language.policy.runbook"),
    ]:
        assert expected in tokens, expected


def test_the_extension_script_is_valid_javascript():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is needed to check extension.js")
    result = subprocess.run([node, "--check", str(EXTENSION / "extension.js")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
