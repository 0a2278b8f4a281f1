"""One HTTP request with a deadline for the whole of it, and Ctrl-C that ends it at once.

urllib's timeout bounds each socket operation, so a server that trickles a byte every two
seconds could hold a `timeout 3s` step for minutes. Here the request runs in a worker
thread on an `http.client` connection the caller owns: when the deadline passes or a signal
arrives, the connection's socket is shut down, which ends the worker's blocking read.
Redirects are not followed (a 3xx is an answer in its own right); proxies from the usual
environment variables are honoured.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request

from ..dataclass import dataclass
from ..errors import Interrupted

HTTP_TIMEOUT = 30.0
HTTP_BODY_LIMIT = 16 << 20
_POLL = 0.05


@dataclass(frozen=True)
class Deadline:
    """When the request must be over (a time.monotonic() value), its length in seconds, and
    what set it, for the message (`the step's timeout 3s`, `30s`)."""

    at: float
    seconds: float
    label: str


@dataclass
class Answer:
    """A response: status, body (at most HTTP_BODY_LIMIT bytes) and headers."""

    status: int
    body: bytes
    headers: list[tuple[str, str]]


def send(method: str, url: str, headers: dict, body: bytes | None, deadline: Deadline,
         interrupts) -> tuple[Answer | None, str | None]:
    """(answer, None), or (None, why it failed in one line). Raises Interrupted on Ctrl-C."""
    try:
        connection, target = _connect(url, max(0.1, deadline.seconds))
    except ValueError as error:
        return None, str(error)
    outcome: dict = {}
    done = threading.Event()
    # http.client drops `connection.sock` once a response that ends the connection arrives,
    # while that response goes on reading from it: keep the socket to shut it down.
    sockets: list[socket.socket] = []

    def work() -> None:
        try:
            connection.request(method, target, body=body, headers=headers)
            if connection.sock is not None:
                sockets.append(connection.sock)
            with connection.getresponse() as response:
                data = response.read(HTTP_BODY_LIMIT)
                outcome["answer"] = Answer(response.status, data, list(response.getheaders()))
        except (OSError, http.client.HTTPException, ValueError) as error:
            outcome["error"] = _reason(error)
        finally:
            done.set()

    worker = threading.Thread(target=work, name="runbook-http", daemon=True)
    worker.start()
    try:
        while not done.wait(min(_POLL, max(0.0, deadline.at - time.monotonic()))):
            if interrupts.event.is_set():
                raise Interrupted()
            if time.monotonic() >= deadline.at:
                return None, f"timed out: the whole request took longer than {deadline.label}"
    finally:
        if not done.is_set():
            _abort(connection, sockets)
            worker.join(5.0)
        connection.close()
        for sock in sockets:
            sock.close()
    interrupts.check()
    if "answer" in outcome:
        return outcome["answer"], None
    return None, outcome.get("error", "no answer")


def _connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    proxy = _proxy_for(parts.scheme, parts.hostname)
    https = parts.scheme == "https"
    if proxy is None:
        return _connection(https, parts.hostname, port, timeout), target
    proxied = urllib.parse.urlsplit(proxy)
    connection = _connection(proxied.scheme == "https", proxied.hostname or "",
                             proxied.port or 80, timeout, tls_to=parts.hostname if https else None)
    if https:
        connection.set_tunnel(parts.hostname, port)
        return connection, target
    # A plain HTTP proxy takes the absolute URL.
    return connection, urllib.parse.urlunsplit(parts._replace(fragment=""))


def _connection(https: bool, host: str, port: int, timeout: float,
                tls_to: str | None = None) -> http.client.HTTPConnection:
    if https or tls_to is not None:
        return http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=ssl.create_default_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _proxy_for(scheme: str, host: str) -> str | None:
    proxies = urllib.request.getproxies()
    if scheme not in proxies or urllib.request.proxy_bypass(host):
        return None
    return proxies[scheme]


def _abort(connection: http.client.HTTPConnection, sockets: list[socket.socket]) -> None:
    """End the worker's blocking call: shut its socket down under it."""
    for sock in {id(s): s for s in [connection.sock, *sockets] if s is not None}.values():
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "[Errno 111] Connection refused"
    if isinstance(error, socket.timeout):
        return "timed out"
    text = str(getattr(error, "reason", None) or error)
    return text or type(error).__name__
