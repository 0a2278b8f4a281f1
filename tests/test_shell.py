"""The process boundary, with real processes: exit codes, output, masking, stopping."""

import hashlib
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook_lang.evaluation.masking import Masker
from runbook_lang.executors import CommandSpec
from runbook_lang.executors.local import LocalExecutor
from runbook_lang.executors.streams import CAPTURE_LIMIT, Output, StreamDigest
from runbook_lang.store.files import FileLog

CANARY = "CANARY-s3cr3t-9f8e7d"
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
EXECUTOR = LocalExecutor(Path("/"), ENV)
interrupt = EXECUTOR.interrupt


@dataclass
class CommandResult:
    """What the executor and the output sinks tell of one command."""

    exit_code: int
    stdout: StreamDigest
    stderr: StreamDigest
    captured: str | None
    capture_truncated: bool
    timed_out: bool
    interrupted: bool


def run(command: str, tmp_path: Path, *, cwd: str | None = None, masker: Masker | None = None,
        stdout_log: Path | None = None, stderr_log: Path | None = None, capture: bool = True,
        echo=None, timeout: float | None = None, grace: float = 5.0,
        env: dict | None = None, executor: LocalExecutor | None = None) -> CommandResult:
    """Run one command through the local executor with masked, logged, captured output;
    `env` is the executor's whole base environment (default ENV)."""
    if executor is None:
        executor = EXECUTOR if env is None else LocalExecutor(Path("/"), env)
    masker = masker or Masker([CANARY])
    out = Output("stdout", masker.stream(), FileLog(stdout_log) if stdout_log else None, echo,
                 capture)
    err = Output("stderr", masker.stream(), FileLog(stderr_log) if stderr_log else None, echo)
    spec = CommandSpec(command, cwd=cwd or str(tmp_path), timeout=timeout, grace=grace)
    try:
        ended = executor.run(spec, out, err)
    finally:
        for sink in (out, err):
            if sink.log is not None:
                sink.log.close()
    return CommandResult(ended.code, out.digest(), err.digest(), out.captured(),
                         out.capture_truncated, ended.timed_out, ended.interrupted)


def alive(pid: int) -> bool:
    """Whether a process is running; a zombie counts as gone.

    Where init does not reap orphans (some containers, this test machine included), a
    killed grandchild stays a zombie forever and ``os.kill(pid, 0)`` still succeeds.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group, from /proc."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text(errors="replace")
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(name))
    return members


def pids(text: str) -> list[int]:
    return [int(word) for word in text.split()]


@pytest.fixture
def reap_leftovers():
    """Kill, by pid, background processes a test deliberately leaves running."""
    started: list[int] = []
    yield started
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


# -- exit codes and output ------------------------------------------------------------------


def test_exit_code_and_untrimmed_capture(tmp_path):
    result = run("printf '  two lines\\n\\n'; exit 3", tmp_path)
    assert result.exit_code == 3
    assert result.captured == "  two lines\n\n"
    assert not (result.timed_out or result.interrupted or result.capture_truncated)


def test_capture_off_gives_none(tmp_path):
    assert run("echo hi", tmp_path, capture=False).captured is None


def test_death_by_signal_is_128_plus_signal(tmp_path):
    assert run("kill -KILL $$", tmp_path).exit_code == 128 + signal.SIGKILL


def test_environment_is_exactly_the_given_one(tmp_path):
    result = run('echo "$ONLY ${HOME-unset}"', tmp_path, env={"ONLY": "x"})
    assert result.captured == "x unset\n"


def test_runs_in_cwd_with_stdin_from_dev_null(tmp_path):
    result = run("pwd; cat; echo done", tmp_path)
    assert result.captured == f"{os.path.realpath(tmp_path)}\ndone\n"


def test_logs_and_digests_of_both_streams(tmp_path):
    out_log, err_log = tmp_path / "out" / "a" / "1.log", tmp_path / "out" / "a" / "2.log"
    result = run("echo out; echo err >&2", tmp_path, stdout_log=out_log, stderr_log=err_log)
    assert out_log.read_bytes() == b"out\n"
    assert err_log.read_bytes() == b"err\n"
    for digest, log in ((result.stdout, out_log), (result.stderr, err_log)):
        assert digest.bytes == log.stat().st_size
        assert digest.sha256 == hashlib.sha256(log.read_bytes()).hexdigest()
    assert (result.stdout.tail, result.stderr.tail) == ("out\n", "err\n")


def test_tail_keeps_the_last_twenty_lines(tmp_path):
    result = run("seq 1 100", tmp_path)
    assert result.stdout.tail == "".join(f"{n}\n" for n in range(81, 101))


def test_tail_keeps_about_two_kib(tmp_path):
    result = run("head -c 100000 /dev/zero | tr '\\0' x", tmp_path)
    assert result.stdout.bytes == 100_000
    assert result.stdout.tail == "x" * 2048


def test_capture_is_capped(tmp_path):
    result = run(f"head -c {CAPTURE_LIMIT + 1000} /dev/zero", tmp_path)
    assert result.capture_truncated
    assert len(result.captured) == CAPTURE_LIMIT
    assert result.stdout.bytes == CAPTURE_LIMIT + 1000


# -- masking --------------------------------------------------------------------------------


def test_secret_split_across_writes_never_reaches_log_or_echo(tmp_path):
    half = len(CANARY) // 2
    command = (
        f"printf 'a {CANARY[:half]}'; sleep 0.05; printf '{CANARY[half:]} b\\n'; "
        f"printf '{CANARY}' >&2"
    )
    echoed: list[tuple[str, bytes]] = []
    log = tmp_path / "out.log"
    result = run(command, tmp_path, stdout_log=log, echo=lambda n, b: echoed.append((n, b)))
    assert log.read_bytes() == b"a *** b\n"
    assert result.captured == "a *** b\n"
    assert result.stderr.tail == "***"
    assert b"".join(b for n, b in echoed if n == "stdout") == b"a *** b\n"
    assert not any(CANARY.encode() in b for _, b in echoed)


def test_secret_at_pipe_buffer_boundaries_is_masked(tmp_path):
    data = bytearray(b"." * (3 << 20))
    for offset in (65536 - 7, (1 << 20) - 3, (2 << 20) - 11, len(data) - len(CANARY)):
        data[offset : offset + len(CANARY)] = CANARY.encode()
    source = tmp_path / "data"
    source.write_bytes(bytes(data))
    log = tmp_path / "out.log"
    result = run("cat data", tmp_path, stdout_log=log, capture=False)
    written = log.read_bytes()
    assert CANARY.encode() not in written
    assert written.count(b"***") == 4
    assert result.stdout.sha256 == hashlib.sha256(written).hexdigest()


# -- stopping -------------------------------------------------------------------------------

# The shell, two background sleeps, and a nested shell with a background and a foreground
# sleep of its own: every pid is printed so the test can look for survivors.
TREE = (
    "echo $$; sleep 1000 & echo $!; sleep 1000 & echo $!; "
    "sh -c 'echo $$; sleep 1000 & echo $!; sleep 1000' & "
    "sleep 0.1; sleep 1000"
)


def assert_group_gone(result: CommandResult) -> None:
    started = pids(result.captured)
    assert len(started) == 5
    assert not [pid for pid in started if alive(pid)]
    assert not group_members(started[0])


def test_timeout_stops_the_whole_process_group(tmp_path):
    result = run(TREE, tmp_path, timeout=0.5)
    assert result.timed_out and not result.interrupted
    assert result.exit_code == 128 + signal.SIGTERM
    assert_group_gone(result)


def test_sigkill_follows_when_sigterm_is_ignored(tmp_path):
    result = run(f"trap '' TERM; {TREE}", tmp_path, timeout=0.3, grace=0.3)
    assert result.timed_out
    assert result.exit_code == 128 + signal.SIGKILL
    assert_group_gone(result)


def test_a_command_whose_group_cannot_be_noted_is_stopped_at_once(tmp_path):
    """The run notes each command's process group in its lock (on_start); a command it
    cannot note is not left running unseen: its group is killed, its pipes closed."""
    noted: list[int] = []

    def refuse(info: dict) -> None:
        noted.append(info["pgid"])
        raise OSError(28, "No space left on device")

    run("true", tmp_path)  # the executor's own descriptors (stdin, self-pipe) exist
    before = sorted(os.listdir("/proc/self/fd"))
    out = Output("stdout", Masker([]).stream(), None, None, True)
    err = Output("stderr", Masker([]).stream(), None, None)
    spec = CommandSpec(TREE, cwd=str(tmp_path), on_start=refuse)
    with pytest.raises(OSError, match="No space left"):
        EXECUTOR.run(spec, out, err)
    [pgid] = noted
    assert not group_members(pgid)
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_interrupt_from_another_thread(tmp_path):
    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        result = run(TREE, tmp_path)
    finally:
        timer.cancel()
    assert result.interrupted and not result.timed_out
    assert_group_gone(result)


def test_interrupt_from_a_signal_handler(tmp_path):
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: interrupt())
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        result = run(TREE, tmp_path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert result.interrupted
    assert_group_gone(result)


def test_interrupt_with_nothing_running_has_no_effect(tmp_path):
    interrupt()
    result = run("echo fine", tmp_path)
    assert (result.exit_code, result.interrupted) == (0, False)


def test_a_stop_request_left_by_an_ended_command_does_not_stop_the_next(tmp_path):
    """A request that reached a command's self-pipe as the command ended (its supervision
    no longer reading) is dropped when the pipe is used again, not taken for a new one."""
    executor = LocalExecutor(Path("/"), ENV)
    with executor._stopper() as stopper:  # a command's supervision, ending
        stopper.request()
    first = run("echo fine", tmp_path, executor=executor)
    second = run("echo again", tmp_path, executor=executor)
    assert [(r.exit_code, r.interrupted) for r in (first, second)] == [(0, False), (0, False)]


def test_without_pidfd_the_exit_is_polled_and_its_status_kept(tmp_path, monkeypatch):
    """Where the kernel has no pidfd_open, the supervision polls for the exit: the status is
    the one Popen's poll collected (its pid is not waited for a second time)."""
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    results = [run(f"echo out{code}; exit {code}", tmp_path) for code in (0, 3, 7)]
    assert [(r.exit_code, r.captured) for r in results] == \
        [(0, "out0\n"), (3, "out3\n"), (7, "out7\n")]


def test_failing_echo_still_stops_the_group(tmp_path):
    def echo(name: str, data: bytes) -> None:
        raise BrokenPipeError

    marker = tmp_path / "pid"
    with pytest.raises(BrokenPipeError):
        run(f"echo $$ > {marker}; sleep 1000 & sleep 0.1; echo hi; sleep 1000", tmp_path, echo=echo)
    assert not group_members(int(marker.read_text()))


# -- background processes and start failures ----------------------------------------------


def test_daemon_with_redirected_output_is_left_running(tmp_path, reap_leftovers):
    result = run("sleep 1000 > /dev/null 2>&1 & echo $!", tmp_path)
    reap_leftovers.extend(pids(result.captured))
    assert result.exit_code == 0
    assert alive(reap_leftovers[0])


def test_background_process_holding_the_pipe_does_not_hang(tmp_path, reap_leftovers):
    result = run("sleep 1000 & echo $!", tmp_path)
    reap_leftovers.extend(pids(result.captured))
    assert result.exit_code == 0 and not result.timed_out
    assert alive(reap_leftovers[0])


def test_output_written_after_the_shell_exits_is_drained(tmp_path):
    result = run("(sleep 0.02; echo late) & echo early", tmp_path)
    assert result.captured == "early\nlate\n"


def test_missing_cwd_gives_127_with_the_reason(tmp_path):
    missing = tmp_path / "nowhere"
    err_log = tmp_path / "logs" / "err.log"
    result = run("true", tmp_path, cwd=str(missing), stderr_log=err_log)
    assert result.exit_code == 127
    assert "No such file or directory" in result.stderr.tail
    assert str(missing) in result.stderr.tail
    assert result.stderr.sha256 == hashlib.sha256(err_log.read_bytes()).hexdigest()
    assert result.captured == ""


def test_command_that_cannot_start_gives_127(tmp_path):
    result = run("echo \0", tmp_path)
    assert result.exit_code == 127
    assert "cannot start" in result.stderr.tail


def test_unknown_command_is_the_shells_127(tmp_path):
    result = run("no-such-command-xyz", tmp_path)
    assert result.exit_code == 127
    assert "not found" in result.stderr.tail
