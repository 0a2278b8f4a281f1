"""The shipped stdlib (`import "std/NAME" as x`): every task, run for real.

Each test writes a small runbook into a temporary workspace and runs it with the `runbook`
command (in-process, see harness.py). Only local resources are used: the HTTP server of
conftest on 127.0.0.1, temporary directories, a temporary git repository.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest
from conftest import clean_env, closed_port, events, read_transcript, run_dirs

STDLIB = Path(__file__).resolve().parents[1] / "stdlib"
MODULES = sorted(p.stem for p in STDLIB.glob("*.runbook") if p.is_file())


def run_book(ws, text: str, *args: str, name: str = "t.runbook", **kwargs):
    """Write `text` as a runbook in the workspace and run it; the Result has `.records`."""
    (ws.root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    before = set(run_dirs(ws.root / ".runbook" / "runs"))
    result = ws.runbook("run", name, *args, **kwargs)
    # The new run is the one that was not there before.
    [result.run_dir] = set(run_dirs(ws.root / ".runbook" / "runs")) - before
    result.transcript = read_transcript(result.run_dir)
    return result


def failures(result) -> list[dict]:
    """The check_failed records of a run."""
    return events(result.transcript, "check_failed")


def outputs(result) -> str:
    """Every command's stdout tail, as the transcript recorded it."""
    return "".join(r["stdout"]["tail"] for r in events(result.transcript, "command_finished"))


# ---------------------------------------------------------------------- every module


def test_the_stdlib_has_the_documented_modules():
    assert set(MODULES) >= {"http", "net", "fs", "release", "maintenance", "git", "metrics",
                            "notify"}


@pytest.mark.parametrize("module", MODULES)
def test_module_checks_clean(ws, module):
    result = ws.runbook("check", str(STDLIB / f"{module}.runbook"))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


@pytest.mark.parametrize("module", MODULES)
def test_module_holds_only_documented_tasks_and_lets(module):
    """A module contributes tasks and lets, each task under a comment block naming it."""
    lines = (STDLIB / f"{module}.runbook").read_text(encoding="utf-8").splitlines()
    tops = [line.split()[0] for line in lines if line and not line[0].isspace()
            and not line.startswith(("#", "}", '"""'))]
    assert set(tops) <= {"task", "let", "import"}, tops
    for index, line in enumerate(lines):
        if line.startswith("task "):
            name = re.match(r"task (\w+)\(", line).group(1)
            block = []
            for above in reversed(lines[:index]):
                if not above.startswith("#"):
                    break
                block.append(above)
            assert any(f"# {name} — " in b for b in block), f"{module}.{name} is undocumented"
            assert any(f".{name}(" in b for b in block), f"{module}.{name} has no example call"


# ---------------------------------------------------------------------- std/http


def test_http_wait_healthy_passes_on_200(ws, server):
    result = run_book(ws, f"""
        import "std/http" as web
        step probe "Probe" {{
          web.wait_healthy(url: "{server.url}/ok", deadline: 2s, every: 100ms)
        }}
    """)
    assert result.exit_code == 0, result.output
    [passed] = events(result.transcript, "check_passed")
    assert passed["expectations"][0]["expr"] == "status == 200"


def test_http_wait_healthy_polls_until_the_deadline(ws, server):
    result = run_book(ws, f"""
        import "std/http" as web
        step probe "Probe" {{
          web.wait_healthy(url: "{server.url}/fail", deadline: 1s, every: 200ms)
        }}
    """)
    assert result.exit_code == 1
    [failed] = failures(result)
    assert failed["attempts"] >= 2  # polled, not tried once (how often depends on the load)
    assert failed["expectations"][0]["actual"] == "status = 500"


def test_http_wait_healthy_reports_a_connection_error(ws):
    result = run_book(ws, f"""
        import "std/http" as web
        step probe "Probe" {{
          web.wait_healthy(url: "http://127.0.0.1:{closed_port()}/health", deadline: 0s)
        }}
    """)
    assert result.exit_code == 1
    assert "refused" in failures(result)[0]["expectations"][0]["actual"].lower()


@pytest.mark.parametrize(("path", "status", "ok"), [
    ("/ok", 200, True), ("/missing", 404, True), ("/fail", 500, True),
    ("/missing", 200, False), ("/ok", 503, False),
])
def test_http_expect_status(ws, server, path, status, ok):
    result = run_book(ws, f"""
        import "std/http" as web
        step probe "Probe" {{
          web.expect_status(url: "{server.url}{path}", status: {status})
        }}
    """)
    assert result.exit_code == (0 if ok else 1), result.output


def test_http_expect_status_defaults_to_200(ws, server):
    book = """
        import "std/http" as web
        step probe "Probe" {{ web.expect_status(url: "{url}") }}
    """
    assert run_book(ws, book.format(url=server.url + "/ok")).exit_code == 0
    assert run_book(ws, book.format(url=server.url + "/redirect")).exit_code == 1


def test_http_expect_json_field(ws, server):
    book = """
        import "std/http" as web
        step probe "Probe" {{
          web.expect_json_field(url: "{url}/ok", field: "version", value: {value})
        }}
    """
    assert run_book(ws, book.format(url=server.url, value='"1.4.2"')).exit_code == 0
    wrong = run_book(ws, book.format(url=server.url, value='"2.0.0"'))
    assert wrong.exit_code == 1
    assert "'1.4.2'" in failures(wrong)[0]["expectations"][1]["actual"]
    # A number is not the text "1.4.2": a type mismatch fails, it is never silently false.
    assert run_book(ws, book.format(url=server.url, value="1.4")).exit_code == 1


def test_http_expect_json_field_fails_on_a_missing_field(ws, server):
    result = run_book(ws, f"""
        import "std/http" as web
        step probe "Probe" {{
          web.expect_json_field(url: "{server.url}/ok", field: "nope", value: "x")
        }}
    """)
    assert result.exit_code == 1
    assert "nope" in failures(result)[0]["expectations"][1]["actual"]


# ---------------------------------------------------------------------- std/net


def test_net_wait_port_open(ws, server):
    result = run_book(ws, f"""
        import "std/net" as net
        step probe "Probe" {{ net.wait_port_open(port: {server.port}, deadline: 2s) }}
    """)
    assert result.exit_code == 0, result.output


def test_net_wait_port_open_times_out(ws):
    result = run_book(ws, f"""
        import "std/net" as net
        step probe "Probe" {{
          net.wait_port_open(port: {closed_port()}, deadline: 2s, every: 100ms)
        }}
    """)
    assert result.exit_code == 1
    assert failures(result)[0]["attempts"] >= 2  # 2s: each attempt starts a python3


def test_net_wait_port_closed(ws, server):
    book = """
        import "std/net" as net
        step probe "Probe" {{ net.wait_port_closed(port: {port}, deadline: 0s) }}
    """
    assert run_book(ws, book.format(port=closed_port())).exit_code == 0
    assert run_book(ws, book.format(port=server.port)).exit_code == 1


def test_net_wait_port_closed_fails_on_an_unknown_host(ws):
    result = run_book(ws, """
        import "std/net" as net
        step probe "Probe" {
          net.wait_port_closed(port: 80, host: "no-such-host.invalid", deadline: 0s)
        }
    """)
    assert result.exit_code == 1


# ---------------------------------------------------------------------- std/fs


FS_BOOK = """
    import "std/fs" as fs
    param action: string {{ choices ["backup", "restore"] }}
    step act "Back up or restore" {{
      if action == "backup" {{ fs.backup(path: "{path}", archive: "backups/data.tar.gz") }}
      else {{ fs.restore(archive: "backups/data.tar.gz", path: "{path}") }}
    }}
"""


def make_tree(root: Path) -> dict[str, str]:
    (root / "data" / "sub").mkdir(parents=True)
    files = {"data/a.txt": "alpha\n", "data/sub/b.txt": "beta\n"}
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "data" / "link").symlink_to("a.txt")
    return files


def test_fs_backup_and_restore_a_directory(ws):
    files = make_tree(ws.root)
    backed = run_book(ws, FS_BOOK.format(path="data"), "--param", "action=backup")
    assert backed.exit_code == 0, backed.output
    archive = ws.root / "backups" / "data.tar.gz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (ws.root / "backups" / "data.tar.gz.sha256").read_text() == \
        f"{digest}  data.tar.gz\n"
    assert f"sha256 {digest}" in outputs(backed)  # recorded in the transcript

    # Damage everything, then restore.
    (ws.root / "data" / "a.txt").write_text("changed\n")
    (ws.root / "data" / "sub" / "b.txt").unlink()
    (ws.root / "data" / "new.txt").write_text("not in the backup\n")
    restored = run_book(ws, FS_BOOK.format(path="data"), "--param", "action=restore")
    assert restored.exit_code == 0, restored.output
    assert f"sha256 {digest} verified" in outputs(restored)
    for name, text in files.items():
        assert (ws.root / name).read_text() == text
    assert not (ws.root / "data" / "new.txt").exists()
    assert (ws.root / "data" / "link").is_symlink()
    assert not list(ws.root.glob(".restore-*")), "the unpack folder was left behind"


def test_fs_backup_and_restore_a_file(ws):
    (ws.root / "app.conf").write_text("port = 8080\n")
    assert run_book(ws, FS_BOOK.format(path="app.conf"), "--param", "action=backup"
                    ).exit_code == 0
    (ws.root / "app.conf").unlink()
    assert run_book(ws, FS_BOOK.format(path="app.conf"), "--param", "action=restore"
                    ).exit_code == 0
    assert (ws.root / "app.conf").read_text() == "port = 8080\n"


def test_fs_restore_refuses_an_archive_whose_checksum_differs(ws):
    make_tree(ws.root)
    assert run_book(ws, FS_BOOK.format(path="data"), "--param", "action=backup"
                    ).exit_code == 0
    # Replace the archive by another valid one: only the recorded checksum can tell.
    archive = ws.root / "backups" / "data.tar.gz"
    (ws.root / "data" / "a.txt").write_text("tampered\n")
    archive.unlink()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(ws.root / "data", arcname="data")
    (ws.root / "data" / "a.txt").write_text("current\n")

    result = run_book(ws, FS_BOOK.format(path="data"), "--param", "action=restore")
    assert result.exit_code == 1
    assert "checksum mismatch" in result.output
    assert (ws.root / "data" / "a.txt").read_text() == "current\n"


def test_fs_restore_refuses_an_archive_without_a_checksum(ws):
    make_tree(ws.root)
    assert run_book(ws, FS_BOOK.format(path="data"), "--param", "action=backup"
                    ).exit_code == 0
    (ws.root / "backups" / "data.tar.gz.sha256").unlink()
    result = run_book(ws, FS_BOOK.format(path="data"), "--param", "action=restore")
    assert result.exit_code == 1
    assert "no checksum recorded" in result.output


def test_fs_backup_never_overwrites_a_backup(ws):
    make_tree(ws.root)
    assert run_book(ws, FS_BOOK.format(path="data"), "--param", "action=backup"
                    ).exit_code == 0
    before = (ws.root / "backups" / "data.tar.gz").read_bytes()
    again = run_book(ws, FS_BOOK.format(path="data"), "--param", "action=backup")
    assert again.exit_code == 1
    assert "exists already" in again.output
    assert (ws.root / "backups" / "data.tar.gz").read_bytes() == before


def test_fs_backup_of_a_missing_path_fails(ws):
    result = run_book(ws, FS_BOOK.format(path="nothing"), "--param", "action=backup")
    assert result.exit_code == 1
    assert not (ws.root / "backups" / "data.tar.gz").exists()


@pytest.mark.parametrize(("mb", "ok"), [(1, True), (10**12, False)])
def test_fs_require_free_space(ws, mb, ok):
    result = run_book(ws, f"""
        import "std/fs" as fs
        step space "Disk" {{ fs.require_free_space(path: ".", mb: {mb}) }}
    """)
    assert result.exit_code == (0 if ok else 1), result.output
    if not ok:
        actual = failures(result)[0]["expectations"][1]["actual"]
        assert re.fullmatch(r"number\(stdout\) = \d+, mb = \d+", actual), actual


def test_fs_require_free_space_on_a_missing_path_fails(ws):
    result = run_book(ws, """
        import "std/fs" as fs
        step space "Disk" { fs.require_free_space(path: "no/such/dir", mb: 1) }
    """)
    assert result.exit_code == 1


# ---------------------------------------------------------------------- std/release


RELEASE_BOOK = """
    import "std/release" as release
    param do: string
    param version: string = ""
    param keep: int = 3
    step act "Act on the releases" {
      if do == "activate" { release.activate(root: "app", version: version) }
      else if do == "roll_back" { release.roll_back(root: "app", version: version) }
      else { release.prune(root: "app", keep: keep) }
    }
"""


def releases(ws, *names: str) -> Path:
    root = ws.root / "app"
    for name in names:
        (root / "releases" / name).mkdir(parents=True)
        (root / "releases" / name / "VERSION").write_text(name + "\n")
    return root


def link(root: Path, name: str) -> str | None:
    path = root / name
    return str(path.readlink()) if path.is_symlink() else None


def release_op(ws, do: str, version: str = "", keep: int = 3):
    return run_book(ws, RELEASE_BOOK, "--param", f"do={do}", "--param", f"version={version}",
                    "--param", f"keep={keep}")


def test_release_activate_keeps_the_previous(ws):
    root = releases(ws, "1.4.2", "1.5.0")
    assert release_op(ws, "activate", "1.4.2").exit_code == 0
    assert (link(root, "current"), link(root, "previous")) == ("releases/1.4.2", None)
    assert release_op(ws, "activate", "1.5.0").exit_code == 0
    assert (link(root, "current"), link(root, "previous")) == \
        ("releases/1.5.0", "releases/1.4.2")
    assert (root / "current" / "VERSION").read_text() == "1.5.0\n"
    # Activating the current release again keeps the rollback target.
    assert release_op(ws, "activate", "1.5.0").exit_code == 0
    assert link(root, "previous") == "releases/1.4.2"
    assert not list(root.glob("*.new")), "a temporary link was left behind"


def test_release_activate_of_a_missing_release_changes_nothing(ws):
    root = releases(ws, "1.4.2")
    assert release_op(ws, "activate", "1.4.2").exit_code == 0
    result = release_op(ws, "activate", "9.9.9")
    assert result.exit_code == 1
    assert "no release directory" in result.output
    assert (link(root, "current"), link(root, "previous")) == ("releases/1.4.2", None)


def test_release_roll_back(ws):
    root = releases(ws, "1.4.2", "1.5.0")
    release_op(ws, "activate", "1.4.2")
    release_op(ws, "activate", "1.5.0")
    result = release_op(ws, "roll_back")
    assert result.exit_code == 0, result.output
    assert (link(root, "current"), link(root, "previous")) == ("releases/1.4.2", None)
    assert (root / "releases" / "1.5.0").is_dir(), "the bad release is kept for investigation"
    # Nothing left to go back to: a second roll back fails instead of guessing.
    again = release_op(ws, "roll_back")
    assert again.exit_code == 1
    assert "no previous release" in again.output
    assert link(root, "current") == "releases/1.4.2"


def test_release_roll_back_of_a_version_that_is_not_current_does_nothing(ws):
    root = releases(ws, "1.3.0", "1.4.2", "1.5.0")
    release_op(ws, "activate", "1.3.0")
    release_op(ws, "activate", "1.4.2")
    # The undo of a switch to 1.5.0 that never happened must not go back to 1.3.0.
    result = release_op(ws, "roll_back", "1.5.0")
    assert result.exit_code == 0, result.output
    assert "nothing to roll back" in outputs(result)
    assert (link(root, "current"), link(root, "previous")) == \
        ("releases/1.4.2", "releases/1.3.0")
    assert release_op(ws, "roll_back", "1.4.2").exit_code == 0
    assert link(root, "current") == "releases/1.3.0"


def test_release_prune_keeps_the_newest_and_the_current_and_previous(ws):
    root = releases(ws, "1.2.0", "1.9.2", "1.10.0", "2.0.0", "2.1.0", "3.0.0")
    release_op(ws, "activate", "1.2.0")
    release_op(ws, "activate", "1.9.2")
    result = release_op(ws, "prune", keep=2)
    assert result.exit_code == 0, result.output
    # Newest two by version (3.0.0, 2.1.0), plus current 1.9.2 and previous 1.2.0.
    assert sorted(p.name for p in (root / "releases").iterdir()) == \
        ["1.2.0", "1.9.2", "2.1.0", "3.0.0"]
    assert "removed releases/1.10.0" in outputs(result)
    assert release_op(ws, "prune", keep=0).exit_code == 1


# ---------------------------------------------------------------------- std/maintenance


MAINT_BOOK = """
    import "std/maintenance" as maint
    param do: string
    step act "Maintenance" {
      if do == "enable" { maint.enable(flag: "run/maintenance.flag", reason: "release 1.5.0") }
      else if do == "disable" { maint.disable(flag: "run/maintenance.flag") }
      else { maint.expect_off(flag: "run/maintenance.flag") }
    }
"""


def test_maintenance_enable_and_disable(ws):
    flag = ws.root / "run" / "maintenance.flag"
    assert run_book(ws, MAINT_BOOK, "--param", "do=expect_off").exit_code == 0
    enabled = run_book(ws, MAINT_BOOK, "--param", "do=enable")
    assert enabled.exit_code == 0, enabled.output
    run_id = enabled.run_dir.name
    lines = flag.read_text().splitlines()
    assert lines[:2] == ["release 1.5.0", f"run {run_id}"]
    assert re.fullmatch(r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[2])
    assert run_book(ws, MAINT_BOOK, "--param", "do=enable").exit_code == 0  # idempotent
    assert run_book(ws, MAINT_BOOK, "--param", "do=expect_off").exit_code == 1

    assert run_book(ws, MAINT_BOOK, "--param", "do=disable").exit_code == 0
    assert not flag.exists()
    assert run_book(ws, MAINT_BOOK, "--param", "do=disable").exit_code == 0  # idempotent
    assert run_book(ws, MAINT_BOOK, "--param", "do=expect_off").exit_code == 0


# ---------------------------------------------------------------------- std/git


GIT_ENV = {"GIT_AUTHOR_NAME": "Tess Ter", "GIT_AUTHOR_EMAIL": "tess@example.com",
           "GIT_COMMITTER_NAME": "Tess Ter", "GIT_COMMITTER_EMAIL": "tess@example.com",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=clean_env(**GIT_ENV)).stdout.strip()


@pytest.fixture
def repo(ws) -> Path:
    """A git repository with one commit, in the workspace's `src/`."""
    path = ws.root / "src"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    (path / "app.txt").write_text("v1\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", ".")
    git(path, "commit", "--quiet", "--message", "first")
    return path


def test_git_require_clean(ws, repo):
    book = """
        import "std/git" as git
        step clean "Clean tree" { git.require_clean(repo: "src") }
    """
    (repo / "debug.log").write_text("ignored files do not count\n")
    assert run_book(ws, book, env=GIT_ENV).exit_code == 0

    (repo / "app.txt").write_text("v2\n")
    (repo / "notes.txt").write_text("untracked\n")
    dirty = run_book(ws, book, env=GIT_ENV)
    assert dirty.exit_code == 1
    actual = failures(dirty)[0]["expectations"][1]["actual"]
    assert "app.txt" in actual and "notes.txt" in actual


def test_git_require_clean_outside_a_repository_fails(ws):
    (ws.root / "plain").mkdir()
    result = run_book(ws, """
        import "std/git" as git
        step clean "Clean tree" { git.require_clean(repo: "plain") }
    """, env={**GIT_ENV, "GIT_CEILING_DIRECTORIES": str(ws.root)})
    assert result.exit_code == 1


TAG_BOOK = """
    import "std/git" as git
    param message: string = ""
    param remote: string = ""
    step tag "Tag the release" {
      git.tag(name: "v1.5.0", message: message, repo: "src", remote: remote)
    }
"""


def test_git_tag_creates_an_annotated_tag(ws, repo):
    result = run_book(ws, TAG_BOOK, "--param", "message=Release 1.5.0 \"quoted\"; ok",
                      env=GIT_ENV)
    assert result.exit_code == 0, result.output
    assert git(repo, "cat-file", "-t", "v1.5.0") == "tag"
    assert git(repo, "tag", "-l", "--format=%(contents:subject)", "v1.5.0") == \
        'Release 1.5.0 "quoted"; ok'
    assert git(repo, "rev-parse", "v1.5.0^{commit}") == git(repo, "rev-parse", "HEAD")

    # A release tag is never moved.
    (repo / "app.txt").write_text("v2\n")
    git(repo, "commit", "--quiet", "--all", "--message", "second")
    again = run_book(ws, TAG_BOOK, env=GIT_ENV)
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_git_tag_default_message_and_push(ws, repo):
    remote = ws.root / "remote.git"
    git(ws.root, "init", "--quiet", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    result = run_book(ws, TAG_BOOK, "--param", "remote=origin", env=GIT_ENV)
    assert result.exit_code == 0, result.output
    assert git(repo, "tag", "-l", "--format=%(contents:subject)", "v1.5.0") == "Release v1.5.0"
    assert git(remote, "tag", "-l") == "v1.5.0"


def test_git_tag_takes_any_repository_path(ws, repo):
    """`"… $(git -C {{repo}} …)"`: the path is one word inside `$(…)` in double quotes too."""
    hostile = ws.root / "src;touch canary;x"
    repo.rename(hostile)
    result = run_book(ws, """
        import "std/git" as git
        param repo: string
        step tag "Tag" { git.tag(name: "v1.5.0", repo: repo) }
    """, "--param", f"repo={hostile.name}", env=GIT_ENV)
    assert result.exit_code == 0, result.output
    assert "as v1.5.0" in result.output
    assert git(hostile, "cat-file", "-t", "v1.5.0") == "tag"
    assert not (ws.root / "canary").exists()


# ---------------------------------------------------------------------- std/metrics


def test_metrics_watch_command_samples_the_whole_window(ws):
    result = run_book(ws, """
        import "std/metrics" as metrics
        step sample "Watch" {
          metrics.watch_command(what: "queue depth", command: "echo 3", threshold: 5,
                                window: 600ms, every: 200ms)
        }
    """)
    assert result.exit_code == 0, result.output
    [passed] = events(result.transcript, "check_passed")
    assert passed["attempts"] == 3
    assert passed["title"] == "queue depth at most 5 for 600ms"


# Prints 1, 9, 1, 1 …: one bad sample, the second.
SPIKE = "n=$(cat n 2>/dev/null || echo 0); echo $((n + 1)) > n; [ $n -eq 1 ] && echo 9 || echo 1"


@pytest.mark.parametrize(("tolerate", "ok"), [(0, False), (1, True)])
def test_metrics_watch_command_tolerates_bad_samples(ws, tolerate, ok):
    result = run_book(ws, f"""
        import "std/metrics" as metrics
        step sample "Watch" {{
          metrics.watch_command(what: "error rate", command: "{SPIKE}", threshold: 5,
                                window: 800ms, every: 100ms, tolerate: {tolerate})
        }}
    """)
    assert result.exit_code == (0 if ok else 1), result.output
    if not ok:
        [failed] = failures(result)
        assert failed["attempts"] == 2, "a watch fails at once, not at the window's end"
        assert failed["expectations"][1]["actual"] == "number(stdout) = 9, threshold = 5"


def test_metrics_watch_command_counts_a_failing_command_as_bad(ws):
    result = run_book(ws, """
        import "std/metrics" as metrics
        step sample "Watch" {
          metrics.watch_command(what: "x", command: "echo 1; exit 3", threshold: 5,
                                window: 1s, every: 100ms)
        }
    """)
    assert result.exit_code == 1
    assert failures(result)[0]["expectations"][0]["actual"] == "exit_code = 3"


@pytest.fixture
def metrics_server(server):
    """The conftest server, answering /metrics with a JSON error rate the test sets."""
    server.error_rate = 0.5

    def answer(path, body, headers):
        if path == "/metrics":
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"error_rate": server.error_rate, "requests": len(server.requests)})
        return 404, {}, "{}"

    server.answer = answer
    return server


@pytest.mark.parametrize(("rate", "ok"), [(0.5, True), (5.0, True), (12.0, False)])
def test_metrics_watch_json(ws, metrics_server, rate, ok):
    metrics_server.error_rate = rate
    result = run_book(ws, f"""
        import "std/metrics" as metrics
        param max_error_rate: float = 5.0
        step sample "Watch" {{
          metrics.watch_json(what: "error rate (%)", url: "{metrics_server.url}/metrics",
                             field: "error_rate", threshold: max_error_rate,
                             window: 300ms, every: 100ms)
        }}
    """)
    assert result.exit_code == (0 if ok else 1), result.output
    assert len(metrics_server.requests) == (3 if ok else 1)


def test_metrics_watch_json_counts_a_missing_field_as_bad(ws, metrics_server):
    result = run_book(ws, f"""
        import "std/metrics" as metrics
        step sample "Watch" {{
          metrics.watch_json(what: "CPU (%)", url: "{metrics_server.url}/metrics",
                             field: "cpu", threshold: 80, window: 1s, every: 100ms)
        }}
    """)
    assert result.exit_code == 1
    assert "cpu" in failures(result)[0]["expectations"][1]["actual"]


# ---------------------------------------------------------------------- std/notify


def test_notify_post_sends_json(ws, server):
    text = 'Release 1.5.0 is "live"\nsee the run'
    result = run_book(ws, f"""
        import "std/notify" as notify
        param text: string
        step tell "Tell people" {{
          notify.post(url: "{server.url}/echo/hook", text: text, sender: "deploy-bot")
        }}
    """, "--param", f"text={text}")
    assert result.exit_code == 0, result.output
    [request] = server.requests
    assert request["method"] == "POST"
    assert request["path"] == "/echo/hook"
    assert request["headers"]["content-type"] == "application/json"
    run_id = result.run_dir.name
    assert json.loads(request["body"]) == {"text": text, "username": "deploy-bot",
                                           "run_id": run_id}


def test_notify_post_masks_a_secret_webhook_url(ws, server):
    result = run_book(ws, """
        import "std/notify" as notify
        secret hook from env "CHAT_WEBHOOK"
        step tell "Tell people" { notify.post(url: hook, text: "hello") }
    """, env={"CHAT_WEBHOOK": f"{server.url}/echo/T0KEN-123"})
    assert result.exit_code == 0, result.output
    assert server.requests[0]["path"] == "/echo/T0KEN-123"
    run_dir = result.run_dir
    assert "T0KEN-123" not in (run_dir / "transcript.jsonl").read_text()
    assert "T0KEN-123" not in result.output


def test_notify_post_fails_when_the_webhook_refuses(ws, server):
    result = run_book(ws, f"""
        import "std/notify" as notify
        step tell "Tell people" {{ notify.post(url: "{server.url}/fail", text: "hello") }}
    """)
    assert result.exit_code == 1
    assert "answered 500" in result.output
