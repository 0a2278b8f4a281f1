#!/bin/sh
# ctl.sh - start, stop and probe the demo app (server.py) from a runbook.
#
#   ctl.sh start PORT RELEASE_DIR PIDFILE [LOGFILE [SERVER_OPTION...]]
#   ctl.sh stop PIDFILE
#   ctl.sh status PIDFILE
#   ctl.sh free-port
#
# POSIX sh plus python3, nothing else (no curl), so the example runbooks run
# on a bare machine. SERVER_OPTIONs are passed to server.py as they are, e.g.
#   ctl.sh start 8080 releases/1.4.2 app.pid app.log --maintenance-flag maint.flag
# LOGFILE defaults to PIDFILE with .pid replaced by .log; it is appended to.
# Exit status: 0 success, 1 failure, 2 usage error.

set -u

HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
PYTHON=${PYTHON:-python3}
START_TIMEOUT=5   # seconds for a started server to answer
STOP_TIMEOUT=5    # seconds between SIGTERM and SIGKILL

usage() {
    sed -n '4,7p' "$0" | sed 's/^# *//' >&2
    exit 2
}

# Fractions of a second are not POSIX sleep, but fall back gracefully.
nap() { sleep 0.1 2>/dev/null || sleep 1; }

read_pid() { cat -- "$1" 2>/dev/null; }

# alive PID: true if PID is a process that has not exited. kill -0 alone also
# succeeds on a zombie, and in containers whose init does not reap, an exited
# server stays a zombie for good: where /proc exists, look at its state.
alive() {
    case ${1:-} in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ] || return 1
    fi
    return 0
}

# running PID: true if PID is a live demo server. Where /proc exists, the
# command line must name server.py: a stale pidfile may hold a pid that an
# unrelated process reuses now, and we must never signal that one.
running() {
    alive "$1" || return 1
    if [ -r "/proc/$1/cmdline" ]; then
        tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'server\.py' || return 1
    fi
    return 0
}

# wait_gone PID TENTHS: true once PID is gone, false if still there after.
# This asks alive, not running: while a process exits, the kernel drops its
# memory (so /proc/PID/cmdline reads empty) a moment before it is gone, and
# "no longer names server.py" must not pass for "stopped".
wait_gone() {
    n=$2
    while [ "$n" -gt 0 ]; do
        alive "$1" || return 0
        nap
        n=$((n - 1))
    done
    ! alive "$1"
}

# terminate PID: SIGTERM, then SIGKILL after STOP_TIMEOUT; true once gone.
# SIGKILL goes only to a process that still is the one we signalled (the
# pid may have been reused by then); one that is exiting needs no SIGKILL.
terminate() {
    kill -TERM "$1" 2>/dev/null
    wait_gone "$1" $((STOP_TIMEOUT * 10)) && return 0
    if running "$1"; then
        echo "ctl.sh: pid $1 ignored SIGTERM for ${STOP_TIMEOUT}s, sending SIGKILL" >&2
        kill -KILL "$1" 2>/dev/null
    fi
    wait_gone "$1" 20
}

# probe PORT: true if anything answers HTTP on /health, whatever the status
# (a broken release answers 500 and a server in maintenance still answers:
# both are started; judging health is the runbook's job, not ours).
probe() {
    "$PYTHON" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=1).close()
except urllib.error.HTTPError:
    pass  # an HTTP error status is still an answer
except Exception:
    sys.exit(1)
EOF
}

cmd_start() {
    [ $# -ge 3 ] || usage
    port=$1 release=$2 pidfile=$3
    shift 3
    if [ $# -ge 1 ]; then log=$1; shift; else log=${pidfile%.pid}.log; fi

    if running "$(read_pid "$pidfile")"; then
        echo "ctl.sh: already running as pid $(read_pid "$pidfile") ($pidfile)" >&2
        exit 1
    fi
    rm -f -- "$pidfile"   # stale: the server writes it again once bound

    # Detach: stdin from /dev/null and stdout/stderr to the log, so the server
    # holds none of the caller's pipes open (a runbook step capturing our
    # output would otherwise hang until the server exits). setsid puts it in
    # its own session, out of reach of signals sent to the caller's process
    # group; without setsid, nohup at least survives the terminal hanging up.
    # (Background jobs of a non-interactive sh already ignore SIGINT.)
    if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=nohup; fi
    $detach "$PYTHON" "$HERE/server.py" --port "$port" --release-dir "$release" \
        --pidfile "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
    child=$!

    # The server writes the pidfile only after binding the port, so pidfile +
    # an HTTP answer means this very server answers, not another one that
    # already held the port.
    deadline=$(($(date +%s) + START_TIMEOUT))
    while :; do
        pid=$(read_pid "$pidfile")
        if [ -n "$pid" ] && probe "$port"; then
            echo "started pid $pid on http://127.0.0.1:$port/ (log: $log)"
            exit 0
        fi
        # alive, not running: just after the fork, the child is still a copy
        # of this sh whose command line does not name server.py yet.
        if ! alive "$child"; then
            reason="server exited during start"
            break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            reason="no answer on port $port within ${START_TIMEOUT}s"
            terminate "$child"   # leave nothing half-started behind
            break
        fi
        nap
    done
    rm -f -- "$pidfile"
    echo "ctl.sh: $reason; last lines of $log:" >&2
    tail -n 20 -- "$log" >&2
    exit 1
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    pid=$(read_pid "$1")
    if ! running "$pid"; then
        rm -f -- "$1"
        echo "not running"
        exit 0
    fi
    if ! terminate "$pid"; then
        echo "ctl.sh: pid $pid still alive after SIGKILL" >&2
        exit 1
    fi
    rm -f -- "$1"
    echo "stopped pid $pid"
}

cmd_status() {
    [ $# -eq 1 ] || usage
    pid=$(read_pid "$1")
    if running "$pid"; then
        echo "running pid $pid"
        exit 0
    fi
    echo "not running"
    exit 1
}

cmd_free_port() {
    [ $# -eq 0 ] || usage
    # Bind port 0 and let the kernel choose; the port is free right now (a
    # small race remains until the server binds it, acceptable for a demo).
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    free-port) cmd_free_port "$@" ;;
    *) usage ;;
esac
