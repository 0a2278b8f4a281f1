#!/usr/bin/env python3
"""A tiny demo web service for the example runbooks.

It exists so that the runbooks in ``examples/`` have something real to deploy,
health-check, watch and roll back, on any machine with ``python3`` and nothing
else (standard library only).

A *release directory* holds a ``VERSION`` file; the service reports that
version. A version whose text contains ``broken`` simulates a bad release: it
is healthy at first, but its ``/metrics`` report a 12 % error rate, above the
10 % "roll back immediately" threshold of the deployment procedure, so it is
the error-rate watch that catches it. Creating ``DIR/BROKEN_HEALTH`` makes a
broken release fail ``/health`` too, to exercise the health-check path.

Usage::

    python3 server.py --port PORT --release-dir DIR [--pidfile FILE]
                      [--maintenance-flag FILE] [--quiet]

Endpoints (GET only; it listens on 127.0.0.1 only)::

    /health       200 {"status": "ok", "version": V}
                  500 {"status": "error"}  (broken version and DIR/BROKEN_HEALTH exists)
    /version      200 text/plain V  (no trailing newline)
    /metrics      200 {"error_rate": X, "p95_ms": Y, "requests": N}
    /maintenance  200 {"status": "ok", "maintenance": false}
    /             200 text/html hello page
    other paths   404 {"status": "not found"}

While the ``--maintenance-flag`` file exists, every path except /health and
/metrics answers 503 {"status": "maintenance"}, so a runbook can drain
traffic and still probe and watch the service.
"""

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"  # a demo: never reachable from outside the machine

# Simulated figures. A good release stays far below the alert levels of the
# procedure; a broken one is above "error rate over 10 %" (immediate
# rollback) and above "P95 over 2x baseline".
GOOD_METRICS = {"error_rate": 0.5, "p95_ms": 40.0}
BROKEN_METRICS = {"error_rate": 12.0, "p95_ms": 120.0}


class Terminated(BaseException):
    """Raised from the SIGTERM handler to leave serve_forever() at once.

    Not an Exception: a SIGTERM that lands while serve_forever() hands a request to a new
    thread would otherwise be caught by socketserver's `except Exception` around
    process_request(), reported as a failed request, and the server would keep serving."""


class App:
    """What the handler needs to know: the release and the request count."""

    def __init__(self, release_dir, maintenance_flag, quiet):
        self.release_dir = release_dir
        with open(os.path.join(release_dir, "VERSION"), encoding="utf-8") as f:
            # Read once at start: a deploy changes the version by restarting,
            # exactly like a real service.
            self.version = f.read().strip()
        self.broken = "broken" in self.version
        self.maintenance_flag = maintenance_flag
        self.quiet = quiet
        self._lock = threading.Lock()  # handlers run on several threads
        self._requests = 0

    def count_request(self):
        with self._lock:
            self._requests += 1
            return self._requests

    def in_maintenance(self):
        # Checked per request so that touching / removing the file switches
        # maintenance mode on a running server, without a restart.
        return bool(self.maintenance_flag) and os.path.exists(self.maintenance_flag)

    def health_failing(self):
        # Also checked per request: a runbook or test can break health later.
        return self.broken and os.path.exists(os.path.join(self.release_dir, "BROKEN_HEALTH"))


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-app"
    app = None  # set by make_server()

    def do_GET(self):
        app = self.app
        requests = app.count_request()
        path = self.path.split("?", 1)[0]

        if path == "/health":
            if app.health_failing():
                return self._json(500, {"status": "error"})
            return self._json(200, {"status": "ok", "version": app.version})
        if path == "/metrics":
            metrics = dict(BROKEN_METRICS if app.broken else GOOD_METRICS)
            metrics["requests"] = requests  # includes this very request
            return self._json(200, metrics)
        if app.in_maintenance():
            return self._json(503, {"status": "maintenance"})
        if path == "/version":
            return self._send(200, "text/plain; charset=utf-8", app.version)
        if path == "/maintenance":
            # Only reached when maintenance is off (else the 503 above).
            return self._json(200, {"status": "ok", "maintenance": False})
        if path == "/":
            page = ("<!doctype html><title>demo app</title>"
                    f"<h1>Hello from the demo app</h1><p>version {app.version}</p>\n")
            return self._send(200, "text/html; charset=utf-8", page)
        return self._json(404, {"status": "not found"})

    def _json(self, code, obj):
        self._send(code, "application/json", json.dumps(obj))

    def _send(self, code, content_type, text):
        body = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        # One line per request on stderr (ctl.sh sends it to the log file).
        if not self.app.quiet:
            message = format % args  # http.server's own log format
            sys.stderr.write(f"{self.log_date_time_string()} [{self.app.version}] {message}\n")


def make_server(port, app):
    handler = type("BoundHandler", (Handler,), {"app": app})
    return ThreadingHTTPServer((HOST, port), handler)


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Demo web service for the example runbooks.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--release-dir", required=True, help="directory holding VERSION")
    parser.add_argument("--pidfile", help="written once the port is bound, removed on exit")
    parser.add_argument("--maintenance-flag", metavar="FILE",
                        help="while FILE exists, answer 503 except /health and /metrics")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)

    # Installed first, so a SIGTERM at any point exits 0 (see the end of file).
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app = App(args.release_dir, args.maintenance_flag, args.quiet)
    except OSError as e:
        print(f"server: cannot read the release version: {e}", file=sys.stderr)
        return 1
    try:
        httpd = make_server(args.port, app)
    except OSError as e:
        print(f"server: cannot listen on {HOST}:{args.port}: {e}", file=sys.stderr)
        return 1

    pid = os.getpid()
    try:
        if args.pidfile:
            # Written only after the bind succeeded: a pidfile means "this
            # process owns the port", which ctl.sh relies on.
            with open(args.pidfile, "w", encoding="ascii") as f:
                f.write(f"{pid}\n")
        print(f"server: version {app.version} listening on http://{HOST}:{args.port}/ pid {pid}",
              file=sys.stderr, flush=True)
        httpd.serve_forever()
    except (Terminated, KeyboardInterrupt):
        print("server: stopping", file=sys.stderr)
    finally:
        httpd.server_close()
        if args.pidfile:
            _remove_own_pidfile(args.pidfile, pid)
    return 0


def _remove_own_pidfile(path, pid):
    """Remove the pidfile only if it is still ours (a new server may own it)."""
    try:
        with open(path, encoding="ascii") as f:
            if f.read().strip() == str(pid):
                os.remove(path)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Terminated:  # SIGTERM before serving started: nothing to clean up
        sys.exit(0)
