"""Built-in HTTP requests (LANGUAGE.md §4, §6.6): made, recorded and shown, or planned."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request

from ..errors import StepFailed
from ..evaluation.values import Duration, Unknown, to_json, to_text
from ..syntax import nodes as n
from .runtime import Frame, Runtime

HTTP_TIMEOUT = 30.0
HTTP_BODY_LIMIT = 16 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A 3xx is an answer in its own right (the contract counts 200-399 as success); following
    # it would hide what the endpoint said.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class Requests:
    """Makes the requests of `http` statements and probes."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def request(self, st: n.Http, frame: Frame, strict: bool):
        """Make (or, in a dry-run, plan) an HTTP request; strict fails outside 200-399."""
        url = self.rt.text(st.url, frame)
        headers = {self.rt.text(h.name, frame): to_text(self.rt.value(h.value, frame))
                   for h in st.headers}
        body = self.rt.value(st.body, frame) if st.body is not None else None
        method = st.method.name.upper()
        if self.rt.dry:
            self.rt.plan(frame, "http", method=method, url=self.rt.mask(url),
                      headers=sorted(headers), body=body is not None)
            return Unknown(f"response of {method} {self.rt.mask(url)}")
        response, error = self.http_request(method, url, headers, body, frame)
        if strict:
            if error is not None:
                raise StepFailed(f"{method} {self.rt.mask(url)}: {error}")
            if not 200 <= response["status"] <= 399:
                raise StepFailed(f"{method} {self.rt.mask(url)} answered {response['status']}")
        return response if error is None else {"status": 0, "body": "", "headers": {},
                                               "error": error}

    def http_request(self, method: str, url: str, headers: dict, body, frame: Frame):
        """Send the request; (response dict, None) or (None, error text). Recorded."""
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                import json

                data = json.dumps(to_json(body)).encode()
                headers.setdefault("Content-Type", "application/json")
            else:
                data = to_text(body).encode()
        left = self.rt.time_left(frame)
        timeout = HTTP_TIMEOUT if left is None else max(0.1, min(HTTP_TIMEOUT, left))
        started = time.monotonic()
        response, error = None, None
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https"):
            # `http` talks HTTP only: a file: or data: URL would read local files.
            raise StepFailed(f"{method} {self.rt.mask(url)}: only http:// and https:// URLs "
                             "are allowed")
        try:
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            with _opener.open(request, timeout=timeout) as answer:
                response = _response(answer.status, answer.read(HTTP_BODY_LIMIT), answer.headers)
        except urllib.error.HTTPError as answer:
            response = _response(answer.code, answer.read(HTTP_BODY_LIMIT), answer.headers)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) \
                as failure:
            reason = getattr(failure, "reason", failure)
            error = str(reason) or type(failure).__name__
        elapsed = int((time.monotonic() - started) * 1000)
        if response is not None:
            response["duration"] = Duration(elapsed)
        self.rt.record("http_request", step=frame.step.name, method=method, url=url,
                       status=response["status"] if response else None, duration_ms=elapsed,
                       error=error, phase=frame.phase)
        self.rt.display.line(self.rt.mask(f"    → {method} {url} "
                                          f"{response['status'] if response else error}"), "dim")
        return response, error



def _response(status: int, body: bytes, headers) -> dict:
    return {"status": status, "body": body.decode("utf-8", "replace"),
            "headers": {k.lower(): v for k, v in headers.items()}}
