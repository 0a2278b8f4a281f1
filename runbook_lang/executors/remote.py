"""What runs on the far side of an SSH connection: a small fixed POSIX `sh` wrapper.

The ssh command line carries only `WRAPPER` below, the same text for every command, free of
values. Everything that varies travels over ssh's stdin as the `payload`: the command text,
the step's `env { }` values (secrets included), the directory, the grace period and a nonce.
So no value ever appears in process arguments, on this machine or on the host, and the
command text reaches `sh -c` on the host exactly as written, with no second layer of shell
parsing by ssh or the login shell.

On the host the wrapper

1. reads the payload: one line of single-quoted assignments, newlines in values spelled
   as a variable (`read` takes exactly one line and never reads ahead, so what follows on
   stdin stays there for step 4);
2. changes to the directory, if one is given (relative to the login directory);
3. starts ``/bin/sh -c COMMAND`` with stdin from /dev/null in a new process group
   (``setsid``, else perl's ``setpgrp``), the step's variables exported in that process
   only, and reports the group with a *trailer* on stderr;
4. watches stdin: a byte or end-of-file before the command ends (a timeout, an interrupt,
   the local side gone, the connection dropped) stops the group: SIGTERM, then SIGKILL
   after the grace period, and the wrapper's side of the channel stays open until the
   group is gone, so the local side knows when nothing is left;
5. reports the exit status with a second trailer and exits with it.

A trailer is a line ``\\x1e NONCE : KIND : FIELDS`` on stderr; the nonce is new for every
command, so a command cannot forge one. `TrailerFilter` takes them out of the stream before
it reaches the sinks. The exit trailer tells the command's status apart from ssh's own exit
code 255 (connection failures) and lets the local side stop waiting for a background process
that keeps the channel open, as the local executor does.

The login shell parses the wrapper once: it is a single line without `!`, `'` or `\\\\`, so
POSIX shells, csh and fish all pass it on unchanged.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Mapping

from ..dataclass import dataclass

RS = b"\x1e"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names the wrapper uses for itself; a step's env must not clobber them.
RESERVED_PREFIX = "_rb_"
_TRAILER_MAX = 256

# One statement per entry; joined with spaces into one line.
_WRAPPER_LINES = (
    # The default IFS ends with a newline: the only way to one without a fork or a literal.
    "_rb_nl=${IFS#??};",
    "IFS= read -r _rb_s || exit 125;",
    'eval "$_rb_s";',
    'if [ -n "$_rb_d" ]; then CDPATH= cd -- "$_rb_d" ||'
    ' { printf "\\036%s:E:cwd\\n" "$_rb_n" >&2; exit 127; }; fi;',
    "if command -v setsid >/dev/null 2>&1; then _rb_g0=setsid;"
    " elif command -v perl >/dev/null 2>&1; then _rb_g0=perl;"
    ' else printf "\\036%s:E:setsid\\n" "$_rb_n" >&2; exit 127; fi;',
    # From here on the wrapper's own stderr is /dev/null (a shell reports a job killed by
    # a signal there); fd 4 is the channel's stderr, fd 3 its stdin.
    "exec 3<&0 0</dev/null 4>&2 2>/dev/null;",
    # The command's group: the child of this shell that leads its own group.
    '_rb_find() { _rb_p=; if [ -r /proc/self/stat ]; then for _rb_f in /proc/[0-9]*/stat;'
    ' do IFS= read -r _rb_q <"$_rb_f" || continue; _rb_o=${_rb_q%% *}; _rb_q=${_rb_q##*") "};'
    ' set -- $_rb_q; if [ "$2" = "$$" ] && [ "$3" = "$_rb_o" ]; then _rb_p=$_rb_o; return 0;'
    " fi; done; return 1; fi; _rb_p=$(ps -A -o pid= -o ppid= -o pgid= | while read -r _rb_a"
    ' _rb_b _rb_o; do if [ "$_rb_b" = "$$" ] && [ "$_rb_a" = "$_rb_o" ]; then'
    ' echo "$_rb_a"; fi; done); [ -n "$_rb_p" ]; };',
    # A live member of that group; zombies do not count (an init that does not reap leaves
    # them, and they cannot be killed).
    '_rb_alive() { kill -0 -"$_rb_p" || return 1; [ -r /proc/self/stat ] || return 0;'
    ' for _rb_f in /proc/[0-9]*/stat; do IFS= read -r _rb_q <"$_rb_f" || continue;'
    ' _rb_q=${_rb_q##*") "}; set -- $_rb_q; if [ "$3" = "$_rb_p" ]; then case "$1" in'
    " Z|X) ;; *) return 0 ;; esac; fi; done; return 1; };",
    "_rb_tick() { sleep 0.1 || sleep 1; };",
    # This shell still runs (its parent may not have reaped it yet: a zombie does not).
    '_rb_up() { kill -0 $$ || return 1; IFS= read -r _rb_q </proc/$$/stat || return 0;'
    ' _rb_q=${_rb_q##*") "}; case "$_rb_q" in Z*|X*) return 1 ;; esac; return 0; };',
    "_rb_x=0;",
    'trap "_rb_x=1" USR1;',
    # The watcher: a byte or end-of-file on the channel's stdin stops the group. Its
    # stdout is the channel, held open until the group is gone.
    "( IFS= read -r _rb_l <&3; kill -USR1 $$; _rb_i=0; until _rb_find; do"
    ' _rb_up && [ "$_rb_i" -lt 50 ] || exit 0; _rb_tick; _rb_i=$((_rb_i + 1)); done;'
    ' kill -TERM -"$_rb_p"; kill -CONT -"$_rb_p"; _rb_i=0;'
    ' while _rb_alive && [ "$_rb_i" -lt "$_rb_g" ]; do _rb_tick; _rb_i=$((_rb_i + 1)); done;'
    ' kill -KILL -"$_rb_p"; _rb_i=0; while _rb_alive && [ "$_rb_i" -lt 10 ]; do _rb_tick;'
    " _rb_i=$((_rb_i + 1)); done ) 4>&- &",
    "_rb_w=$!;",
    # The command, in the foreground (so it starts with SIGINT and SIGQUIT at their
    # defaults, unlike a background job), in a group of its own: this subshell reports its
    # pid and start time (with the boot's id they name the group even after the pid is
    # reused), exports the step's variables and becomes the command.
    "( exec 2>&4 4>&- 3<&-; _rb_t=; _rb_q=;"
    " if IFS= read -r _rb_t 2>/dev/null </proc/self/stat; then _rb_q=${_rb_t%% *};"
    ' _rb_t=${_rb_t##*") "}; set -- $_rb_t; _rb_t=${20};'
    " IFS= read -r _rb_b 2>/dev/null </proc/sys/kernel/random/boot_id &&"
    " _rb_t=$_rb_b:$_rb_t; else _rb_t=; fi;"
    ' printf "\\036%s:S:%s:%s\\n" "$_rb_n" "$_rb_q" "$_rb_t" >&2; _rb_env;'
    ' if [ "$_rb_g0" = setsid ]; then exec setsid /bin/sh -c "$_rb_c"; fi;'
    ' exec perl -e "setpgrp(0,0); exec @ARGV; exit 127" /bin/sh -c "$_rb_c" );',
    # ksh93 reports a death by signal N as 256+N, not 128+N as every other sh does.
    '_rb_r=$?; if [ "$_rb_r" -gt 256 ]; then _rb_r=$((_rb_r - 128)); fi;',
    'if [ "$_rb_x" = 0 ]; then kill "$_rb_w"; fi;',
    'printf "\\036%s:X:%s\\n" "$_rb_n" "$_rb_r" >&4;',
    'exit "$_rb_r"',
)
WRAPPER = " ".join(_WRAPPER_LINES)
REMOTE_COMMAND = f"exec /bin/sh -c '{WRAPPER}'"


class PayloadError(ValueError):
    """A command or value that cannot be sent (a NUL byte, a bad variable name)."""


@dataclass(frozen=True)
class Payload:
    """The bytes sent on ssh's stdin for one command, and the nonce of its trailers."""

    data: bytes
    nonce: str


def build_payload(command: str, env: Mapping[str, str], cwd: str | None,
                  grace: float) -> Payload:
    """The script the wrapper reads and evaluates: single-quoted assignments only."""
    nonce = secrets.token_hex(16)
    exports = []
    for name, value in env.items():
        if not _NAME.match(name) or name.startswith(RESERVED_PREFIX):
            raise PayloadError(f"`{name}` cannot be an environment variable name")
        exports.append(f"export {name}={_word(value, f'the value of {name}')};")
    body = " ".join([
        f"_rb_n={nonce};",
        f"_rb_g={max(0, math.ceil(grace * 10))};",
        f"_rb_d={_word(cwd or '', 'the directory')};",
        f"_rb_c={_word(command, 'the command')};",
        "_rb_env() {", *exports, ":; }",
    ])
    try:
        data = body.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise PayloadError(f"text that is not UTF-8: {exc.reason}") from None
    return Payload(data + b"\n", nonce)


def _word(text: str, what: str) -> str:
    """`text` as one sh word on one line: single-quoted, with each newline spelled
    `'"$_rb_nl"'` (the wrapper's newline), so the whole payload is a single line that
    `read` takes at once, however many lines the command has."""
    return quote(text, what=what).replace("\n", "'\"$_rb_nl\"'")


def quote(text: str, *, what: str = "a value") -> str:
    """`text` single-quoted for sh: one word, nothing expanded."""
    if "\0" in text:
        raise PayloadError(f"{what} holds a NUL byte")
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass
class Trailers:
    """What the wrapper reported about one command."""

    pgid: int | None = None
    start: str | None = None
    status: int | None = None
    failure: str | None = None  # "cwd" or "setsid": the command could not start


class TrailerFilter:
    """Takes the wrapper's trailers out of the stderr stream, chunk by chunk.

    Bytes that might begin a trailer are held back until the next chunk decides; memory
    stays bounded whatever the stream holds.
    """

    def __init__(self, nonce: str) -> None:
        self.marker = RS + nonce.encode() + b":"
        self.found = Trailers()
        self._held = b""
        # Called with `found` when the start trailer arrives.
        self.on_start: Callable[[Trailers], None] | None = None

    def feed(self, chunk: bytes) -> bytes:
        """The chunk without trailers (and without what is held back for the next one)."""
        data = self._held + chunk if self._held else chunk
        self._held = b""
        out = []
        while data:
            at = data.find(self.marker)
            if at < 0:
                keep = _partial_suffix(data, self.marker)
                out.append(data[: len(data) - keep])
                self._held = data[len(data) - keep:]
                break
            out.append(data[:at])
            end = data.find(b"\n", at)
            if end < 0:
                if len(data) - at > _TRAILER_MAX:  # not ours after all: pass it on
                    out.append(data[at:])
                else:
                    self._held = data[at:]
                break
            self._parse(data[at + len(self.marker): end])
            data = data[end + 1:]
        return b"".join(out)

    def flush(self) -> bytes:
        """What was held back, at the end of the stream."""
        held, self._held = self._held, b""
        return held

    def _parse(self, body: bytes) -> None:
        kind, _, rest = body.decode("ascii", "replace").partition(":")
        if kind == "S":
            pgid, _, start = rest.partition(":")
            if pgid.isdigit():
                self.found.pgid = int(pgid)
            self.found.start = start or None
            if self.on_start is not None:
                self.on_start(self.found)
        elif kind == "X" and rest.isdigit():
            self.found.status = int(rest)
        elif kind == "E":
            self.found.failure = rest


def _partial_suffix(data: bytes, marker: bytes) -> int:
    """Length of the longest end of `data` that is a beginning of `marker`."""
    start = data.rfind(RS, max(0, len(data) - len(marker) + 1))
    if start < 0:
        return 0
    tail = data[start:]
    return len(tail) if marker.startswith(tail) else 0
