"""Who may read a run's record (LANGUAGE.md §9): run directories 0700 and files 0600, or a
team's group in a setgid runs folder, where another member can `runbook approve` and
`runbook resume` from their own shell, and a user outside the group is told why not.

The other users are real: `setpriv` runs `runbook` under other uids (the tests need root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, RUNBOOK, Workspace, clean_env, events, read_transcript
from keys import make_key

GROUP = 47110  # the team's group: no name needed
MEMBER, OUTSIDER = 47111, 47112


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask 022", "umask 000"])
def test_run_directories_are_private_whatever_the_umask(ws, tmp_path, mask):
    key = make_key(tmp_path / "key", "ed25519")
    with umask(mask):
        paused = ws.run("approve_quorum", "--as", "alice", "--sign-with", str(key))
        assert paused.exit_code == 3, paused.output
        (run_dir,) = paused.run_dirs()
        approved = ws.runbook("approve", run_dir.name, "release_gate", "--as", "bob")
        assert approved.exit_code == 0, approved.output
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {p.relative_to(run_dir).as_posix() for p in files}
    assert {"transcript.jsonl", "head", "head.sig", "runbook.snapshot", "approvals.jsonl",
            "output/00002-prepare.stdout.log"} <= names
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(run_dir) == mode(run_dir / "output") == 0o700
    assert mode(run_dir.parent) == 0o700  # .runbook/runs, created by the run


# ---------------------------------------------------------------------- a team's folder


def needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("runs `runbook` as other users: needs root and setpriv")


@pytest.fixture
def team() -> Iterator[Path]:
    """/tmp/…/project with .runbook/runs and a lock folder, both setgid 2770 group GROUP:
    what an administrator sets up for a team on one machine."""
    needs_root()
    base = Path(tempfile.mkdtemp(prefix="runbook-team-"))
    try:
        base.chmod(0o755)
        project = base / "project"
        project.mkdir(mode=0o755)
        shutil.copy(FIXTURES / "approve_quorum.runbook", project)
        (project / "approve_quorum.runbook").chmod(0o644)
        (project / "runs.txt").touch(mode=0o666)  # the runbook's steps append to it
        (project / "runs.txt").chmod(0o666)
        (project / ".runbook").mkdir(mode=0o755)
        for shared in (project / ".runbook" / "runs", base / "locks"):
            shared.mkdir()
            os.chown(shared, 0, GROUP)
            shared.chmod(0o2770)
        yield project
    finally:
        shutil.rmtree(base, ignore_errors=True)


def as_user(project: Path, uid: int, groups: list[int], *args: str, **env: str):
    """`runbook ARGS…` in `project` as another user (uid, with these groups)."""
    member = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(uid), *member,
                           str(RUNBOOK), *args], cwd=project, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL,
                          env=clean_env(RUNBOOK_LOCK_DIR=str(project.parent / "locks"),
                                        HOME=str(project.parent), **env))


def test_a_team_member_approves_and_resumes_from_their_own_shell(team):
    ws = Workspace(team)
    started = ws.runbook("run", "approve_quorum.runbook", "--as", "alice",
                         env={"RUNBOOK_LOCK_DIR": str(team.parent / "locks")})
    assert started.exit_code == 3, started.output
    (run_dir,) = started.run_dirs()
    assert (mode(run_dir), run_dir.stat().st_gid) == (0o2770, GROUP)
    for path in (p for p in run_dir.rglob("*") if p.is_file()):
        assert (mode(path), path.stat().st_gid) == (0o660, GROUP), path

    bob = as_user(team, MEMBER, [GROUP], "approve", run_dir.name, "release_gate", "--as", "bob")
    assert bob.returncode == 0, bob.stderr
    decisions = run_dir / "approvals.jsonl"
    assert (decisions.stat().st_uid, decisions.stat().st_gid, mode(decisions)) == \
        (MEMBER, GROUP, 0o660)
    carol = as_user(team, MEMBER, [GROUP], "approve", run_dir.name, "release_gate", "--as",
                    "carol")
    assert carol.returncode == 0, carol.stderr
    resumed = as_user(team, MEMBER, [GROUP], "resume", run_dir.name, RUNBOOK_USER="carol")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    records = read_transcript(run_dir)
    assert [r["approver"] for r in events(records, "gate_approved")] == ["bob", "carol"]
    assert events(records, "run_resumed")[0]["operator"]["user"] == "carol"
    assert ws.runbook("verify", run_dir.name).exit_code == 0


def test_someone_outside_the_group_is_told_why_not(team):
    ws = Workspace(team)
    started = ws.runbook("run", "approve_quorum.runbook", "--as", "alice")
    assert started.exit_code == 3, started.output
    (run_dir,) = started.run_dirs()
    before = sorted(p.name for p in run_dir.iterdir())
    for args in (("approve", run_dir.name, "release_gate", "--as", "mallory"),
                 ("verify", str(run_dir)), ("history",)):
        result = as_user(team, OUTSIDER, [], *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert "permission denied" in result.stderr
        assert f"group {GROUP}, mode 2770: ask to be added to that group" in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == before
