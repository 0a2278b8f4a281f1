"""Built-in HTTP requests (LANGUAGE.md §4, §6.6): made, recorded and shown, or planned.

- The URL's interpolations are percent-encoded for their place (a path segment, a query
  value, the fragment); a value at the very start is the base URL and goes in as written,
  one in the host part must be a host name. `raw()` opts out.
- Header values holding CR or LF are refused (and never printed: they may be secrets).
- A body written as JSON text (`"{\"name\": {{name}}}"`) is a JSON template: each
  interpolation becomes a JSON value, or, inside a JSON string, escaped string content, so a
  value cannot add fields. A list or object value is sent as JSON.
- `timeout` bounds the whole request, not each read, and Ctrl-C ends it at once.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

from ..errors import EvalError, StepFailed
from ..evaluation.values import Duration, Unknown, to_json, to_text
from ..syntax import nodes as n
from .command import step_timeout_text
from .runtime import Frame, Runtime

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"[A-Za-z0-9._~:\[\]-]+")


class Requests:
    """Makes the requests of `http` statements and probes."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def request(self, st: n.Http, frame: Frame, strict: bool):
        """Make (or, in a dry-run, plan) an HTTP request; strict fails outside 200-399."""
        url = self.url(st.url, frame)
        headers = {self.rt.text(h.name, frame): to_text(self.rt.value(h.value, frame))
                   for h in st.headers}
        body, content_type = self.body(st.body, frame)
        method = st.method.name.upper()
        if self.rt.dry:
            self.rt.plan(frame, "http", method=method, url=self.rt.mask(url),
                         headers=sorted(headers), body=body is not None)
            return Unknown(f"response of {method} {self.rt.mask(url)}")
        check_headers(headers)
        if content_type is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = content_type
        response, error = self.send(method, url, headers, body, frame)
        if strict:
            if error is not None:
                raise StepFailed(f"{method} {self.rt.mask(url)}: {error}")
            if not 200 <= response["status"] <= 399:
                raise StepFailed(f"{method} {self.rt.mask(url)} answered {response['status']}")
        return response if error is None else {"status": 0, "body": "", "headers": {},
                                               "error": error}

    # ------------------------------------------------------------------ rendering

    def url(self, string: n.String, frame: Frame) -> str:
        """The URL with each interpolation encoded for its place."""
        evaluator = self.rt.evaluator(frame)
        out: list[str] = []
        for part in string.parts:
            if part.kind == "text":
                out.append(part.value)
                continue
            try:
                value = evaluator.eval(part.expr)
            except EvalError as error:
                raise StepFailed(f"line {string.span.line}: {error.render(self.rt.mask)}") \
                    from None
            text = to_text(value)
            if isinstance(value, Unknown) or _is_raw(part.expr):
                out.append(text)
                continue
            self.rt.scope.mask_derived(part.expr, text, frame)
            out.append(encode_for_place("".join(out), text, self.rt.mask))
        return "".join(out)

    def body(self, expr, frame: Frame) -> tuple[bytes | None, str | None]:
        """The body's bytes and the content type it implies (None: not set by us)."""
        if expr is None:
            return None, None
        if expr.kind == "string" and _json_template(expr):
            return self.json_template(expr, frame).encode(), "application/json"
        value = self.rt.value(expr, frame)
        if isinstance(value, (dict, list)):
            return json.dumps(to_json(value), ensure_ascii=False).encode(), "application/json"
        if expr.kind == "call" and expr.func.name == "to_json":
            return to_text(value).encode(), "application/json"
        return to_text(value).encode(), None

    def json_template(self, string: n.String, frame: Frame) -> str:
        """A body written as JSON: each interpolation is a JSON value where a value goes, and
        escaped string content inside a JSON string."""
        evaluator = self.rt.evaluator(frame)
        out: list[str] = []
        in_string = False
        for part in string.parts:
            if part.kind == "text":
                in_string = _json_in_string(part.value, in_string)
                out.append(part.value)
                continue
            try:
                value = evaluator.eval(part.expr)
            except EvalError as error:
                raise StepFailed(f"line {string.span.line}: {error.render(self.rt.mask)}") \
                    from None
            if isinstance(value, Unknown):
                out.append(to_text(value))
                continue
            self.rt.scope.mask_derived(part.expr, to_text(value), frame)
            if _is_raw(part.expr):
                out.append(to_text(value))
            elif in_string:
                out.append(json.dumps(to_text(value), ensure_ascii=False)[1:-1])
            else:
                out.append(json.dumps(to_json(value), ensure_ascii=False))
        return "".join(out)

    # ------------------------------------------------------------------ sending

    def send(self, method: str, url: str, headers: dict, body: bytes | None, frame: Frame):
        """Send the request within the step's time; (response, None) or (None, error text).
        Recorded and shown, masked."""
        # The HTTP client (http.client, ssl) is loaded by the first request, not by every run.
        from .http_client import HTTP_TIMEOUT, Deadline, send

        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https"):
            # `http` talks HTTP only: a file: or data: URL would read local files.
            raise StepFailed(f"{method} {self.rt.mask(url)}: only http:// and https:// URLs "
                             "are allowed")
        left = self.rt.time_left(frame)
        limit, label = HTTP_TIMEOUT, f"{HTTP_TIMEOUT:g}s"
        if left is not None and left < HTTP_TIMEOUT:
            limit, label = max(0.0, left), f"the step's timeout {step_timeout_text(frame)}"
        started = time.monotonic()
        answer, error = send(method, url, headers, body, Deadline(started + limit, limit, label),
                             self.rt.interrupts)
        elapsed = int((time.monotonic() - started) * 1000)
        response = None
        if answer is not None:
            response = {"status": answer.status,
                        "body": answer.body.decode("utf-8", "replace"),
                        "headers": {k.lower(): v for k, v in answer.headers},
                        "duration": Duration(elapsed)}
        if error is not None:
            error = self.rt.mask(error)
        self.rt.record("http_request", step=frame.step.name, method=method, url=url,
                       status=response["status"] if response else None, duration_ms=elapsed,
                       error=error, phase=frame.phase)
        self.rt.display.line(self.rt.mask(f"    → {method} {url} "
                                          f"{response['status'] if response else error}"), "dim")
        return response, error


def check_headers(headers: dict) -> None:
    """Header names and values must not hold CR or LF (a value could add headers). The
    value is never shown: it may be a token."""
    for name, value in headers.items():
        if any(c in name for c in "\r\n:") or not name.strip():
            raise StepFailed(f"header name {name!r} is not a valid header name")
        if "\r" in value or "\n" in value or "\0" in value:
            raise StepFailed(f"header {name}: its value holds a line break or NUL byte, which "
                             "could add headers; refused (the value is not shown)")


def encode_for_place(prefix: str, text: str, mask) -> str:
    """An interpolated value, encoded for where it lands in the URL so far (`prefix`)."""
    if not prefix:
        # The URL starts with it: the base URL (`{{base_url}}/health`), taken as written.
        if any(c.isspace() or ord(c) < 32 for c in text):
            raise StepFailed(f"the URL {mask(text)!r} holds white space or a control "
                             "character")
        return text
    scheme = _SCHEME.match(prefix)
    if scheme and "/" not in prefix[scheme.end():] and "?" not in prefix and "#" not in prefix:
        if not _HOST.fullmatch(text):
            raise StepFailed(f"{mask(text)!r} in the host part of a URL is not a host name "
                             "(use raw() to insert URL text as written)")
        return text
    return urllib.parse.quote(text, safe="")


def _is_raw(expr) -> bool:
    return expr.kind == "call" and expr.func.name == "raw"


def _json_template(string: n.String) -> bool:
    """A string written as JSON text: its static text starts with `{` or `[`."""
    first = string.parts[0] if string.parts else None
    return first is not None and first.kind == "text" and first.value.lstrip()[:1] in ("{", "[")


def _json_in_string(text: str, in_string: bool) -> bool:
    """Whether JSON text continues inside a string after `text`."""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and in_string:
            escaped = True
        elif char == '"':
            in_string = not in_string
    return in_string
