"""The built wheel works on its own: grammar and stdlib inside the package, a working command.

The wheel is built from this checkout with the test environment's hatchling, installed into a
fresh virtual environment (its dependencies from the package index), and that environment's
`runbook check` runs on a file importing a `std/` module, from an unrelated directory.
"""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from frontend import FIXTURES, user_env

ROOT = Path(__file__).resolve().parent.parent
DEPENDENCIES = ("lark", "pydantic", "rich", "pyyaml")


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=user_env(),
                          capture_output=True, text=True, timeout=timeout)


def index_reachable() -> bool:
    """Whether the package index answers (a TCP connection to it, a few seconds at most)."""
    try:
        with socket.create_connection(("pypi.org", 443), timeout=3):
            return True
    except OSError:
        return False


def local_wheel_sources() -> bool:
    """Whether pip can find the dependencies without a network: a local index, find-links
    or wheels in pip's cache."""
    places: list[Path] = []
    for key in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"):
        places += [Path(p.removeprefix("file://")) for p in os.environ.get(key, "").split()]
    config = configparser.ConfigParser()
    config.read([Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"),
                 Path.home() / ".config" / "pip" / "pip.conf"])
    for section in config.sections():
        for key in ("find-links", "extra-index-url", "index-url"):
            places += [Path(p.removeprefix("file://"))
                       for p in config.get(section, key, fallback="").split()]
    for place in places:
        if place.is_dir() and any(
                (place / name).exists() or any(place.glob(f"{name}-*.whl"))
                for name in DEPENDENCIES):
            return True
    cache = Path.home() / ".cache" / "pip"
    return (cache / "wheels").is_dir() and any((cache / "wheels").rglob("*.whl"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built without build isolation."""
    out = tmp_path_factory.mktemp("dist")
    result = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--wheel-dir", out, ROOT, cwd=out)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("runbook_lang-*.whl")
    return built


def test_wheel_carries_grammar_and_stdlib(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "runbook_lang/grammars/runbook.lark" in names
    shipped = sorted(n for n in names if n.startswith("runbook_lang/stdlib/"))
    assert "runbook_lang/stdlib/http.runbook" in shipped
    for module in (ROOT / "stdlib").glob("*.runbook"):
        assert f"runbook_lang/stdlib/{module.name}" in shipped


@pytest.mark.slow  # a fresh virtual environment and a pip install
def test_installed_wheel_checks_a_std_import(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # No pip inside the new environment: this environment's pip installs into it, which saves
    # bootstrapping one (and works offline from the same sources).
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
                  wheel, cwd=tmp_path)
    if install.returncode != 0 and "no such option: --python" in install.stderr:
        shutil.rmtree(venv)
        run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
        install = run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    if install.returncode != 0:
        if not index_reachable() and not local_wheel_sources():
            pytest.skip("cannot install the wheel's dependencies: no network and no local "
                        "wheels or pip cache")
        pytest.fail("installing the wheel failed:\n" + install.stdout + install.stderr)

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(FIXTURES / "wheel" / "uses_std.runbook", project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run(venv / "bin" / "runbook", "check", "../project/uses_std.runbook",
                 cwd=elsewhere)
    assert (result.returncode, result.stdout, result.stderr) == \
        (0, "../project/uses_std.runbook: ok\n", "")

    # A core install has no pygls: `runbook lsp` says which extra brings it, and the
    # Pygments entry point is there for Pygments alone (nothing imports it without it).
    lsp = run(venv / "bin" / "runbook", "lsp", cwd=elsewhere)
    assert lsp.returncode == 2 and "pip install 'runbook-lang[lsp]'" in lsp.stderr, lsp.stderr
    assert "Traceback" not in lsp.stderr
    entry = run(python, "-c", "from importlib.metadata import entry_points; "
                "print([e.value for e in entry_points(group='pygments.lexers')])", cwd=elsewhere)
    assert entry.stdout.strip() == "['runbook_lang.highlight:RunbookLexer']", entry.stderr

    # The package found its grammar and stdlib inside site-packages, not in this checkout.
    where = run(python, "-c", "from runbook_lang import resources; "
                "print(resources.grammar_path()); print(resources.stdlib_dir())", cwd=elsewhere)
    grammar, stdlib = where.stdout.split()
    assert "site-packages" in grammar and "site-packages" in stdlib
    assert not Path(grammar).is_relative_to(ROOT)
