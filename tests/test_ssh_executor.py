"""The SSH executor against a real sshd (tests/sshfleet.py): what runs on the host, what
reaches it, what is left of it afterwards, and how failures read.

The "hosts" are aliases of one local sshd, so the tests can look at the host's process
table directly (`/proc`, `ps`): it is this machine's.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sshfleet import HOSTS, Fleet

from runbook_lang.executors import CommandSpec, Exit
from runbook_lang.executors.remote import REMOTE_COMMAND
from runbook_lang.executors.ssh import SshConnections, SshExecutor
from runbook_lang.targets.connection import SettingError, SshHost

CANARY = "CANARY-ssh-5e1f0c9a"
# The executor and the directory are shared by a test's examples on purpose.
REUSED_FIXTURE = HealthCheck.function_scoped_fixture


class Collect:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.finished = 0

    def take(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        self.finished += 1

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")


class Count:
    """A sink that keeps only a digest: memory stays flat however much arrives."""

    def __init__(self) -> None:
        self.size = 0
        self.largest = 0
        self.sha = hashlib.sha256()
        self.finished = 0

    def take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.largest = max(self.largest, len(chunk))
        self.sha.update(chunk)

    def finish(self) -> None:
        self.finished += 1


def run(executor: SshExecutor, command: str, **spec) -> tuple[Exit, str, str]:
    out, err = Collect(), Collect()
    result = executor.run(CommandSpec(command, **spec), out, err)
    assert (out.finished, err.finished) == (1, 1)
    return result, out.text, err.text


def cmdlines() -> dict[int, bytes]:
    """Every process's argument vector, as /proc shows it (NULs between arguments)."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                found[int(name)] = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                pass
    return found


def marked(marker: str) -> list[int]:
    """Live processes whose arguments hold `marker`."""
    return [pid for pid, args in cmdlines().items()
            if marker.encode() in args and _live(pid)]


def _live(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until(predicate, timeout: float = 20.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def tree(marker: str) -> str:
    """A command that starts a small process tree: four shells carrying `marker` (the
    command itself and three children, one of which ignores SIGTERM)."""
    return (f"sh -c 'sleep 1000; : {marker}' & sh -c 'sleep 1000; : {marker}' & "
            f"sh -c 'trap \"\" TERM; sleep 1000; : {marker}-stubborn' & wait")


@pytest.fixture
def connections(fleet: Fleet):
    with SshConnections(config_file=str(fleet.config), connect_timeout=10) as conns:
        yield conns


@pytest.fixture(scope="module")
def web1(fleet: Fleet):
    """One executor shared by the tests that only run commands."""
    with SshConnections(config_file=str(fleet.config), connect_timeout=10) as conns:
        executor = conns.executor(SshHost("web1"))
        executor.open()
        yield executor


@pytest.fixture
def leftovers():
    """Pids a test deliberately leaves running on the host; killed by pid afterwards."""
    started: list[int] = []
    yield started
    for pid in started:
        if _live(pid):
            os.kill(pid, signal.SIGKILL)


# -- each host is itself ---------------------------------------------------------------------


def test_every_alias_reaches_its_own_state(connections):
    for name in HOSTS:
        executor = connections.executor(SshHost(name))
        assert executor.target == f"ssh:{name}"
        result, out, err = run(executor, 'echo "$FLEET_HOST"; cat "$FLEET_ROOT/$FLEET_HOST/name"')
        assert (result.code, result.error, err) == (0, None, "")
        assert out == f"{name}\n{name}\n"


def test_the_command_runs_under_sh_c_exactly_as_written(web1):
    command = ("""printf '%s|' "$0" "$#" 'a  b' "it's" \\$HOME; echo; """
               """echo "$(echo nested)" `echo old`""")
    local = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True)
    result, out, _ = run(web1, command)
    assert result.code == 0
    assert out == local.stdout == "/bin/sh|0|a  b|it's|$HOME|\nnested old\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[REUSED_FIXTURE])
@given(st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
               max_size=200))
def test_any_text_quoted_for_sh_arrives_unchanged(web1, text):
    result, out, _ = run(web1, f"printf %s {shlex.quote(text)}")
    assert (result.code, out) == (0, text)


@pytest.mark.parametrize("command, code", [
    ("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("false", 1),
    ("kill -TERM $$", 128 + signal.SIGTERM), ("kill -KILL $$", 128 + signal.SIGKILL),
    ("kill -INT $$", 128 + signal.SIGINT), ("no-such-command-here", 127),
])
def test_exit_codes_and_signals_as_locally(web1, command, code):
    result, _, _ = run(web1, command)
    assert result.code == code
    assert not result.unreachable and result.error is None
    # The same command here, unless this process ignores SIGINT (pytest-xdist's workers
    # do, and a child inherits that): runbook's commands start with SIGINT at its default.
    if "INT" not in command or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        local = subprocess.run(["/bin/sh", "-c", command], capture_output=True)
        assert (128 - local.returncode if local.returncode < 0 else local.returncode) == code


def test_stdin_is_empty(web1):
    result, out, _ = run(web1, 'cat; read line; echo "read=$? cat-done"', timeout=30)
    assert (result.code, result.timed_out, out) == (0, False, "read=1 cat-done\n")


def test_stdout_and_stderr_are_kept_apart(web1):
    result, out, err = run(web1, "echo out; echo err >&2; echo out2")
    assert (out, err) == ("out\nout2\n", "err\n")


def test_output_after_the_command_ends_is_still_read(web1):
    result, out, _ = run(web1, "(sleep 0.05; echo late) & echo early")
    assert out == "early\nlate\n"


def test_twenty_megabytes_stream_through_in_chunks(web1):
    size = 20_000_000
    out, err = Count(), Collect()
    tracemalloc.start()
    try:
        result = web1.run(CommandSpec(f"head -c {size} /dev/zero | tr '\\0' x"), out, err)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.code == 0
    assert out.size == size
    assert out.sha.hexdigest() == hashlib.sha256(b"x" * size).hexdigest()
    assert out.largest <= 1 << 20
    assert peak < 8 << 20  # a few chunks in flight, never the whole output


# -- environment, directory, and what others can see -------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[REUSED_FIXTURE])
@given(st.dictionaries(
    st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
            max_size=80),
    max_size=4))
def test_env_values_arrive_unchanged(web1, tmp_path, env):
    command = "".join(f'printf %s "${name}" > {tmp_path}/{name}; ' for name in env) + "true"
    result, _, _ = run(web1, command, env=env)
    assert result.code == 0
    for name, value in env.items():
        assert (tmp_path / name).read_bytes() == value.encode()


def test_hostile_env_values_stay_values(web1, tmp_path):
    target = tmp_path / "pwned"
    values = {"A": f"$(touch {target})", "B": f"'; touch {target}; '", "C": "-oProxyCommand=x",
              "D": "line1\nline2\n\n", "E": "\\\\n \\' \" ` $HOME"}
    command = "".join(f'printf "%s|" "${name}"; ' for name in values)
    result, out, _ = run(web1, command, env=values)
    assert result.code == 0
    assert out == "".join(f"{v}|" for v in values.values())
    assert not target.exists()


def test_env_names_that_are_not_names_are_refused(web1):
    result, _, err = run(web1, "true", env={"A B": "x"})
    assert result.code == 127 and "cannot be an environment variable name" in result.error
    assert "runbook: cannot start command" in err


def test_a_nul_byte_in_a_value_is_refused(web1):
    result, _, _ = run(web1, "true", env={"A": "x\0y"})
    assert result.code == 127 and "NUL" in result.error


def test_secret_and_env_values_never_appear_in_any_process_arguments(web1, tmp_path):
    proof = tmp_path / "received"
    other = f"plain-value-{uuid.uuid4().hex}"
    spec = CommandSpec(f'printf %s "$TOKEN" > {proof}; sleep 60; : marker-{other[-8:]}',
                       env={"TOKEN": CANARY, "OTHER": other})
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(r=web1.run(spec, Collect(), Collect())))
    worker.start()
    try:
        wait_until(proof.exists, what="the command to start")
        assert proof.read_text() == CANARY  # the command has the secret…
        assert marked(f"marker-{other[-8:]}")  # …and is running now
        everything = b"\n".join(cmdlines().values())
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    finally:
        web1.interrupt()
        worker.join()
    assert box["r"].interrupted
    # …but no process on either side shows it: the local ssh, the host's shells, anything.
    for value in (CANARY, other):
        assert value.encode() not in everything
        assert value not in ps


def test_directory_absolute_relative_and_missing(web1, fleet):
    result, out, _ = run(web1, "cat name", cwd=str(fleet.state / "web1"))
    assert (result.code, out) == (0, "web1\n")
    import pwd

    login = pwd.getpwuid(os.geteuid()).pw_dir
    relative = os.path.relpath(fleet.state / "web2", login)
    result, out, _ = run(web1, "cat name", cwd=relative)
    assert (result.code, out) == (0, "web2\n")
    result, out, err = run(web1, "echo never", cwd="/no/such/dir")
    assert result.code == 127 and out == ""
    assert result.error == "cannot start command on web1: no directory '/no/such/dir'"
    assert "/no/such/dir" in err


def test_start_reports_the_remote_process_group(web1):
    seen: list[dict] = []
    result, out, _ = run(web1, "ps -o pgid= -p $$", on_start=seen.append)
    assert result.code == 0 and len(seen) == 1
    assert seen[0]["host"] == "ssh:web1"
    assert seen[0]["pgid"] == int(out.strip())
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert seen[0]["start"].startswith(boot + ":")


# -- stopping: nothing survives on the host ------------------------------------------------------


def test_timeout_stops_the_remote_group(web1):
    marker = f"m-{uuid.uuid4().hex[:10]}"
    result, _, _ = run(web1, tree(marker), timeout=1.5, grace=0.5)
    assert result.timed_out and not result.interrupted
    assert result.code in (128 + signal.SIGTERM, 128 + signal.SIGKILL)
    assert marked(marker) == []


def test_sigkill_follows_when_the_command_ignores_sigterm(web1):
    marker = f"m-{uuid.uuid4().hex[:10]}"
    box: dict = {}
    command = f"trap '' TERM; {tree(marker)}"
    worker = threading.Thread(target=lambda: box.update(r=run(web1, command, grace=0.5)))
    worker.start()
    wait_until(lambda: len(marked(marker)) == 4, what="the process tree")
    web1.interrupt()
    worker.join(timeout=30)
    result = box["r"][0]
    assert result.interrupted and result.code == 128 + signal.SIGKILL
    assert marked(marker) == []


def test_interrupt_from_another_thread_stops_the_remote_group(web1):
    marker = f"m-{uuid.uuid4().hex[:10]}"
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(r=run(web1, tree(marker), grace=1)))
    worker.start()
    wait_until(lambda: len(marked(marker)) == 4, what="the process tree")
    web1.interrupt()
    worker.join(timeout=30)
    result = box["r"][0]
    assert result.interrupted and not result.timed_out
    assert marked(marker) == []


def test_interrupt_from_a_signal_handler(web1, tmp_path):
    marker = f"m-{uuid.uuid4().hex[:10]}"
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: web1.interrupt())
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        result, _, _ = run(web1, tree(marker), grace=1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert result.interrupted
    assert marked(marker) == []


def test_interrupt_with_nothing_running_has_no_effect(web1):
    web1.interrupt()
    result, out, _ = run(web1, "echo fine")
    assert (result.code, result.interrupted, out) == (0, False, "fine\n")


def test_a_failing_sink_still_stops_the_remote_group(fleet):
    class Broken(Collect):
        def take(self, chunk: bytes) -> None:
            raise BrokenPipeError

    marker = f"m-{uuid.uuid4().hex[:10]}"
    with SshConnections(config_file=str(fleet.config)) as conns:
        executor = conns.executor(SshHost("web2"))
        with pytest.raises(BrokenPipeError):
            executor.run(CommandSpec(f"sleep 0.5; echo hi; {tree(marker)}"), Broken(),
                         Collect())
    wait_until(lambda: marked(marker) == [], what="the remote group to be stopped")


def test_a_background_process_does_not_hang_the_command(web1, leftovers):
    result, out, _ = run(web1, "sleep 1000 & echo $!", timeout=30)
    leftovers.extend(int(word) for word in out.split())
    assert (result.code, result.timed_out) == (0, False)
    assert _live(leftovers[0])  # left running, as a local command's daemon is


# -- connections: one master per host, reused, and gone after close -------------------------


def master_check(executor: SshExecutor) -> subprocess.CompletedProcess:
    return subprocess.run([*executor.base_args(), "-O", "check", "--", executor.host.name],
                          capture_output=True, text=True, timeout=30)


def test_one_connection_per_host_reused_and_closed(fleet):
    before = fleet.accepted()
    conns = SshConnections(config_file=str(fleet.config))
    executors = [conns.executor(SshHost(name)) for name in ("web3", "web4")]
    for executor in executors:
        executor.open()
        for i in range(4):
            assert run(executor, f"echo {i}")[0].code == 0
    assert conns.executor(SshHost("web3")) is executors[0]
    assert fleet.accepted() - before == 2
    checks = [master_check(executor) for executor in executors]
    assert all(c.returncode == 0 and "Master running" in c.stderr for c in checks)
    masters = [int(c.stderr.split("pid=")[1].split(")")[0]) for c in checks]
    sockets = [executor.control_path for executor in executors]
    assert oct(os.stat(conns.directory).st_mode & 0o777) == "0o700"
    conns.close()
    assert not any(_live(pid) for pid in masters)
    assert not any(path.exists() for path in sockets)
    assert not conns.directory.exists()
    assert not [pid for pid, args in cmdlines().items()
                if str(conns.directory).encode() in args and _live(pid)]
    conns.close()  # twice is harmless


def test_a_dropped_connection_fails_the_command_and_stops_it(fleet):
    marker = f"m-{uuid.uuid4().hex[:10]}"
    with SshConnections(config_file=str(fleet.config)) as conns:
        executor = conns.executor(SshHost("web5"))
        executor.open()
        pid = int(master_check(executor).stderr.split("pid=")[1].split(")")[0])
        box: dict = {}
        worker = threading.Thread(target=lambda: box.update(r=run(executor, tree(marker))))
        worker.start()
        wait_until(lambda: len(marked(marker)) == 4, what="the process tree")
        os.kill(pid, signal.SIGKILL)  # the connection is gone
        worker.join(timeout=30)
        result, _, err = box["r"]
        assert result.code == 255 and result.unreachable
        assert result.error.startswith("lost the connection to web5 while the command ran")
        wait_until(lambda: marked(marker) == [], what="the orphaned group to be stopped")
        # The next command connects again.
        before = fleet.accepted()
        result, out, _ = run(executor, "echo again")
        assert (result.code, out) == (0, "again\n")
        assert fleet.accepted() - before == 1


def test_a_killed_runner_leaves_nothing_behind(fleet, tmp_path):
    marker = f"m-{uuid.uuid4().hex[:10]}"
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from runbook_lang.executors import CommandSpec
        from runbook_lang.executors.ssh import SshConnections
        from runbook_lang.targets.connection import SshHost

        class Null:
            def take(self, chunk): pass
            def finish(self): pass

        conns = SshConnections(config_file={str(fleet.config)!r})
        executor = conns.executor(SshHost("db1"))
        executor.open()
        print(conns.directory, flush=True)
        executor.run(CommandSpec({tree(marker)!r}, grace=1), Null(), Null())
    """))
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                          text=True) as runner:
        directory = runner.stdout.readline().strip()
        wait_until(lambda: len(marked(marker)) == 4, what="the process tree")
        runner.kill()
    wait_until(lambda: marked(marker) == [], what="the host to stop the command")
    wait_until(lambda: not [pid for pid, args in cmdlines().items()
                            if directory.encode() in args and _live(pid)],
               what="the master to exit")
    # A killed runner cannot remove its socket directory; the master removed its socket.
    assert not list(Path(directory).glob("h*[0-9]"))
    shutil.rmtree(directory)


# -- failures read clearly ------------------------------------------------------------------


def unreachable(fleet: Fleet, name: str, config: Path | None = None) -> tuple[Exit, str]:
    with SshConnections(config_file=str(config or fleet.config), connect_timeout=10) as conns:
        executor = conns.executor(SshHost(name))
        executor.open()
        result, out, err = run(executor, "echo should-not-run")
    assert out == ""
    assert (result.code, result.unreachable) == (255, True)
    assert "\n" not in result.error and result.error.startswith(f"cannot connect to {name}: ")
    assert err == f"runbook: {result.error}\n"
    return result, err


def test_a_closed_port_is_unreachable(fleet):
    result, _ = unreachable(fleet, "down1")
    assert "connection refused" in result.error
    assert "(ssh: connect to host 127.0.0.1 port" in result.error


def test_a_name_that_does_not_resolve_is_unreachable(fleet):
    result, _ = unreachable(fleet, "nowhere1")
    assert "cannot resolve the host name" in result.error
    assert "Could not resolve hostname nowhere1.invalid" in result.error


def test_a_wrong_key_is_an_authentication_failure(fleet):
    result, _ = unreachable(fleet, "badkey1")
    assert "authentication failed" in result.error and "Permission denied" in result.error


def test_host_keys_are_checked(fleet, tmp_path):
    wrong = fleet.write_config(tmp_path / "wrong", known_hosts=fleet.wrong_known_hosts())
    result, _ = unreachable(fleet, "web1", wrong)
    assert "host key verification failed" in result.error
    assert "Host key verification failed." in result.error
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    unknown = fleet.write_config(tmp_path / "unknown", known_hosts=empty)
    result, _ = unreachable(fleet, "web1", unknown)
    assert "host key verification failed" in result.error
    assert empty.read_text() == ""  # nothing was learnt silently


def test_a_failed_connection_is_reported_once_then_tried_again(fleet):
    with SshConnections(config_file=str(fleet.config)) as conns:
        executor = conns.executor(SshHost("down1"))
        executor.open()
        first = run(executor, "true")[0]
        second = run(executor, "true")[0]
    assert first.unreachable and second.unreachable
    assert first.error == second.error


def test_inventory_settings_override_the_ssh_config(fleet):
    with SshConnections(config_file=str(fleet.config)) as conns:
        # `app1` is no alias: the inventory's address, port and user reach the server.
        host = SshHost("app1", address="127.0.0.1", port=fleet.port, user="root")
        result, out, _ = run(conns.executor(host), "echo reached")
        assert (result.code, out) == (0, "reached\n")
        # The inventory's port wins over the configuration's.
        closed = SshHost("web1", port=fleet.port + 1 if fleet.port < 65535 else 1)
        result, _, _ = run(conns.executor(closed), "true")
        assert result.unreachable


# -- names and options never become something else --------------------------------------------


@pytest.mark.parametrize("name", [
    "-oProxyCommand=touch /tmp/pwned", "-F/etc/passwd", "web1;id", "web 1", "web1\nHost *",
    "root@web1", "ssh://web1", "%h", "web1'", "$(id)", "", "web/1", "-",
])
def test_hostile_host_names_are_refused(name):
    with pytest.raises(SettingError):
        SshHost(name)


@pytest.mark.parametrize("field, value", [
    ("address", "-oProxyCommand=id"), ("address", "a b"), ("address", "x\ny"),
    ("user", "-lroot"), ("user", "ro ot"), ("user", "root@x"), ("port", 0), ("port", 70000),
    ("port", "22; id"),
])
def test_hostile_settings_are_refused(field, value):
    with pytest.raises(SettingError):
        SshHost("web1", **{field: value})


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_an_accepted_host_name_is_a_plain_word(name):
    try:
        SshHost(name)
    except SettingError:
        return
    assert not name.startswith("-")
    assert all(c.isascii() and (c.isalnum() or c in "._:-") for c in name)


def test_the_host_name_comes_after_the_end_of_options(connections):
    executor = connections.executor(SshHost("web1", address="127.0.0.1", user="root"))
    args = executor.command_args()
    assert args[-3:] == ["--", "web1", REMOTE_COMMAND]
    assert args.count("--") == 1
    assert "BatchMode=yes" in args
    assert not [a for a in args if a.lower().startswith(("stricthostkeychecking",
                                                         "userknownhostsfile"))]


def test_a_valid_but_unknown_name_is_a_destination_not_an_option(fleet, tmp_path):
    proof = tmp_path / "pwned"
    with SshConnections(config_file=str(fleet.config)) as conns:
        host = SshHost("oProxyCommand", address="nowhere2.invalid")
        result, _, _ = run(conns.executor(host), f"touch {proof}")
    assert result.unreachable and "cannot resolve the host name" in result.error
    assert not proof.exists()


# -- connecting takes bounded time, and can be interrupted ---------------------------------------


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word (no SSH banner)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_host_that_never_answers_times_out(fleet, silent_server):
    with SshConnections(config_file=str(fleet.config), connect_timeout=1) as conns:
        executor = conns.executor(SshHost("web1", port=silent_server))
        executor.open()
        result, _, _ = run(executor, "true")
    assert result.unreachable and "connection timed out" in result.error


def test_connecting_can_be_interrupted(fleet, silent_server):
    with SshConnections(config_file=str(fleet.config), connect_timeout=60) as conns:
        executor = conns.executor(SshHost("web1", port=silent_server))
        timer = threading.Timer(0.5, executor.interrupt)
        timer.start()
        try:
            executor.open()
        finally:
            timer.cancel()
        result, _, err = run(executor, "true")
        assert (result.code, result.interrupted, result.unreachable) == (130, True, False)
        assert result.error == "interrupted while connecting to web1"
        assert not marked(str(conns.directory))  # no ssh left trying


def test_a_timeout_of_zero_stops_the_command_before_it_does_anything(web1, tmp_path):
    marker = tmp_path / "ran"
    result, _, _ = run(web1, f"sleep 0.5; touch {marker}", timeout=0, grace=0.5)
    assert result.timed_out and result.code == 128 + signal.SIGTERM
    assert not result.unreachable
    assert not marker.exists()


def test_hosts_run_concurrently_each_over_its_own_connection(fleet):
    from concurrent.futures import ThreadPoolExecutor

    names = [f"node{i:02d}" for i in range(12)]
    before = fleet.accepted()

    def work(conns: SshConnections, name: str) -> list[str]:
        executor = conns.executor(SshHost(name, address="127.0.0.1", port=fleet.port))
        executor.open()
        return [run(executor, f"echo {name}-{i}")[1] for i in range(3)]

    with SshConnections(config_file=str(fleet.config)) as conns:
        with ThreadPoolExecutor(max_workers=6) as pool:
            outputs = list(pool.map(lambda name: work(conns, name), names))
        directory = conns.directory
    assert outputs == [[f"{name}-{i}\n" for i in range(3)] for name in names]
    assert fleet.accepted() - before == len(names)
    assert not marked(str(directory))  # every master ended
