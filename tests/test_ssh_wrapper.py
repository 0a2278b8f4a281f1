"""The host-side wrapper and its protocol, without ssh: the wrapper run by this machine's
`sh` exactly as a login shell runs it, the payload, the trailers, and ssh's failure lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lang.executors.remote import (
    REMOTE_COMMAND,
    WRAPPER,
    PayloadError,
    TrailerFilter,
    build_payload,
    quote,
)
from runbook_lang.executors.sshsession import describe_failure, one_line


def wrapped(command: str, env: dict | None = None, cwd: str | None = None,
            path: str | None = None) -> tuple[int, str, str, TrailerFilter]:
    """Run `command` through the wrapper the way sshd's login shell would."""
    payload = build_payload(command, env or {}, cwd, 1.0)
    code, out, raw_err = login_shell(payload.data, {"PATH": path or os.environ["PATH"],
                                                    "HOME": "/"})
    trailers = TrailerFilter(payload.nonce)
    err = trailers.feed(raw_err) + trailers.flush()
    return code, out.decode(), err.decode(), trailers


def login_shell(data: bytes, env: dict, cwd: Path | None = None, close: bool = False,
                argv: list[str] | None = None) -> tuple[int, bytes, bytes]:
    """What sshd does: the login shell runs the remote command with the channel as stdin,
    which stays open (as ssh keeps it) unless `close`."""
    with subprocess.Popen(argv or ["/bin/sh", "-c", REMOTE_COMMAND], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          cwd=cwd) as proc:
        proc.stdin.write(data)
        proc.stdin.flush()
        if close:
            proc.stdin.close()
        err: list[bytes] = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
        reader.start()
        out = proc.stdout.read()
        reader.join(timeout=30)
        code = proc.wait(timeout=30)
        if not close:
            proc.stdin.close()
    return code, out, err[0]


def test_the_wrapper_is_one_line_a_login_shell_passes_on_unchanged():
    assert "\n" not in WRAPPER and "'" not in WRAPPER
    assert "!" not in WRAPPER.replace("$!", "")  # history expansion: only `$!` is safe
    assert "\\\\" not in WRAPPER  # fish would fold a double backslash in single quotes
    assert REMOTE_COMMAND == f"exec /bin/sh -c '{WRAPPER}'"


def test_the_wrapper_reports_start_and_status():
    code, out, err, trailers = wrapped("echo $$; exit 7")
    assert (code, err) == (7, "")
    assert trailers.found.status == 7
    assert trailers.found.pgid == int(out)


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_without_setsid_perl_gives_the_command_its_group(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("perl", "ps", "sleep", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    code, out, _, trailers = wrapped("echo $$ $(ps -o pgid= -p $$)", path=str(bin_dir))
    pid, pgid = out.split()
    assert code == 0 and pid == pgid  # the command leads a group of its own
    assert trailers.found.status == 0


def test_without_setsid_or_perl_the_command_does_not_start(tmp_path):
    (tmp_path / "bin").mkdir()
    code, out, _, trailers = wrapped("echo ran", path=str(tmp_path / "bin"))
    assert (code, out, trailers.found.failure) == (127, "", "setsid")


def test_a_missing_directory_is_reported(tmp_path):
    code, out, err, trailers = wrapped("echo ran", cwd=str(tmp_path / "none"))
    assert (code, out, trailers.found.failure) == (127, "", "cwd")
    assert "none" in err


def test_cdpath_does_not_redirect_a_relative_directory(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    payload = build_payload("pwd", {}, "sub", 1.0)
    _, out, _ = login_shell(payload.data, {"PATH": os.environ["PATH"],
                                           "CDPATH": str(tmp_path / "a")}, cwd=tmp_path)
    assert out.decode() == f"{tmp_path}/sub\n"


def test_a_stop_before_the_command_starts_ends_everything(tmp_path):
    marker = tmp_path / "ran"
    payload = build_payload(f"sleep 0.5; touch {marker}; sleep 1000", {}, None, 1.0)
    code, _, _ = login_shell(payload.data, {"PATH": os.environ["PATH"]}, close=True)
    assert code == 128 + 15
    assert not marker.exists()


def test_the_step_env_reaches_only_the_command():
    code, out, _, _ = wrapped('echo "$A|$PATH_SEEN"; env | grep -c "^_rb_" || true',
                              env={"A": "1", "PATH_SEEN": "x"})
    assert (code, out) == (0, "1|x\n0\n")


def test_no_stdin_no_payload():
    proc = subprocess.run(["/bin/sh", "-c", REMOTE_COMMAND], input=b"", capture_output=True)
    assert proc.returncode == 125


# -- the payload ----------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))))
def test_quote_is_one_sh_word(text):
    out = subprocess.run(["/bin/sh", "-c", f"printf %s {quote(text)}"], capture_output=True)
    assert out.stdout == text.encode()


def test_nul_bytes_and_bad_names_are_refused():
    with pytest.raises(PayloadError, match="NUL"):
        build_payload("echo \0", {}, None, 1)
    with pytest.raises(PayloadError, match="the value of A holds a NUL"):
        build_payload("true", {"A": "\0"}, None, 1)
    for name in ("A B", "1A", "A=B", "_rb_c", "", "A;B"):
        with pytest.raises(PayloadError, match="environment variable name"):
            build_payload("true", {name: "x"}, None, 1)


def test_the_payload_is_one_line_however_many_lines_its_values_have():
    payload = build_payload("echo 'a\nb'\n\necho c", {"X": "1\n2\n"}, None, 2.5)
    assert payload.data.count(b"\n") == 1 and payload.data.endswith(b"\n")
    assert b"_rb_g=25;" in payload.data
    code, out, _, _ = wrapped("printf '%s|' \"$X\"; echo 'a\nb'\n\necho c", {"X": "1\n2\n"})
    assert (code, out) == (0, "1\n2\n|a\nb\nc\n")


# -- trailers ----------------------------------------------------------------------------------


chunks = st.lists(st.binary(max_size=64), max_size=8)


@settings(max_examples=300)
@given(chunks, chunks, st.integers(0, 255), st.data())
def test_trailers_are_taken_out_of_any_stream_split_anywhere(before, after, status, data):
    nonce = "0123456789abcdef0123456789abcdef"
    start = f"\x1e{nonce}:S:4242:boot:77\n".encode()
    end = f"\x1e{nonce}:X:{status}\n".encode()
    content = b"".join(before) + b"".join(after)
    stream = b"".join(before) + start + b"".join(after) + end
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    trailers = TrailerFilter(nonce)
    seen = []
    trailers.on_start = lambda found: seen.append(found.pgid)
    out = b"".join(trailers.feed(p) for p in pieces) + trailers.flush()
    assert out == content
    assert (trailers.found.pgid, trailers.found.start, trailers.found.status) == (
        4242, "boot:77", status)
    assert seen == [4242]


def test_a_trailer_with_another_nonce_is_just_output():
    trailers = TrailerFilter("a" * 32)
    forged = b"\x1e" + b"b" * 32 + b":X:0\n"
    assert trailers.feed(b"x" + forged) + trailers.flush() == b"x" + forged
    assert trailers.found.status is None


def test_an_unfinished_trailer_prefix_is_given_back_at_the_end():
    trailers = TrailerFilter("c" * 32)
    assert trailers.feed(b"data\x1ecc") == b"data"
    assert trailers.flush() == b"\x1ecc"


# -- ssh's failures in one line ---------------------------------------------------------------


@pytest.mark.parametrize("stderr, reason", [
    ("ssh: connect to host 10.0.0.1 port 22: Connection refused\n", "connection refused"),
    ("ssh: Could not resolve hostname x: Name or service not known\n",
     "cannot resolve the host name"),
    ("root@x: Permission denied (publickey).\n", "authentication failed"),
    ("@@@@@\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\n@@@@@\n"
     "Host key verification failed.\n", "host key verification failed (the host's key is "
     "not the one in known_hosts)"),
    ("ssh: connect to host 10.0.0.1 port 22: Connection timed out\n", "connection timed out"),
    ("Connection timed out during banner exchange\n", "connection timed out"),
    ("ssh: connect to host x port 22: No route to host\n", "no route to host"),
    ("kex_exchange_identification: read: Connection reset by peer\n", "connection reset"),
    ("Connection closed by 10.0.0.1 port 22\n", "connection closed by the host"),
    ("Can't open user config file /x: No such file or directory\n",
     "cannot read the ssh configuration file"),
    ("something new\n", "cannot connect"),
])
def test_failure_lines(stderr, reason):
    line = describe_failure("web1", stderr)
    assert line.startswith(f"cannot connect to web1: {reason} (ssh: ")
    assert "\n" not in line


def test_a_hosts_banner_cannot_reach_the_terminal():
    line = describe_failure("web1", "Permission denied \x1b[31mred\x1b]0;title\x07\n")
    assert "\x1b" not in line and "\x07" not in line
    assert one_line("a\tb\r\nc" + "x" * 1000).startswith("a b c")
    assert len(one_line("x" * 1000)) == 400


def test_the_sh_on_this_machine_is_posix(tmp_path):
    # The wrapper's own syntax, checked by the shell that runs it on the fleet.
    assert subprocess.run(["/bin/sh", "-n", "-c", WRAPPER]).returncode == 0
    if shutil.which("bash"):
        assert subprocess.run(["bash", "--posix", "-n", "-c", WRAPPER]).returncode == 0
    assert Path("/bin/sh").exists()


# -- other shells -------------------------------------------------------------------------------


def missing_shell(shell: str) -> None:
    """Skipped on a workstation without that shell; in CI (which installs them) a failure."""
    message = f"{shell} is not installed (.ci/run installs it with apt-get)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


LOGIN_SHELLS = ["bash", "dash", "zsh", "tcsh", "fish", "ksh"]
# Not ksh93 as /bin/sh: it aborts now and then (SIGABRT, or a stray status) when the watcher's
# signal arrives while it forks a subshell. As a login shell it only hands over to /bin/sh.
POSIX_SHELLS = [["dash"], ["bash", "--posix"], ["busybox", "sh"], ["zsh", "--emulate", "sh"]]


@pytest.mark.parametrize("shell", LOGIN_SHELLS)
def test_a_login_shell_passes_the_wrapper_on_unchanged(shell, tmp_path):
    path = shutil.which(shell)
    if path is None:
        missing_shell(shell)
    payload = build_payload("printf '%s|' \"$0\" \"$A\"; exit 4", {"A": "it's $HOME"}, None, 1)
    code, out, raw = login_shell(payload.data, {"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
                                 argv=[path, "-c", REMOTE_COMMAND], cwd=tmp_path)
    trailers = TrailerFilter(payload.nonce)
    err = trailers.feed(raw) + trailers.flush()
    assert (code, out, err) == (4, b"/bin/sh|it's $HOME|", b"")
    assert trailers.found.status == 4


@pytest.mark.parametrize("shell", POSIX_SHELLS, ids=lambda argv: " ".join(argv))
def test_the_wrapper_runs_under_every_posix_sh(shell, tmp_path):
    if shutil.which(shell[0]) is None:
        missing_shell(shell[0])
    argv = [shutil.which(shell[0]), *shell[1:], "-c", WRAPPER]
    env = {"PATH": os.environ["PATH"]}
    payload = build_payload("echo ran; exit 3", {}, str(tmp_path), 1)
    code, out, _ = login_shell(payload.data, env, argv=argv)
    assert (code, out) == (3, b"ran\n")
    marker = tmp_path / "late"
    payload = build_payload(f"sleep 0.5; touch {marker}", {}, None, 1)
    code, _, _ = login_shell(payload.data, env, argv=argv, close=True)
    assert code == 128 + 15 and not marker.exists()
