"""Commands, HTTP requests, checks and watches: the statements that touch the world.

Every command goes through `shell.run_command` (own process group, streamed, masked, logged)
and every request through `http_request`; both are recorded in the transcript. Checks poll
a probe until their expectations hold; watches sample it for a whole window.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from ..errors import EvalError, Interrupted, StepFailed
from ..evaluation.values import Duration, Unknown, to_json, to_text
from ..executors import shell
from ..syntax import nodes as n
from .runtime import Frame, Runtime

HTTP_TIMEOUT = 30.0
HTTP_BODY_LIMIT = 16 << 20


@dataclass
class Sample:
    """One probe attempt: the names `expect` sees, and why it could not run (if so)."""

    names: dict
    error: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A 3xx is an answer in its own right (the contract counts 200-399 as success); following
    # it would hide what the endpoint said.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class Probes:
    """Base of the statement executor: the effects on the outside world."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # ------------------------------------------------------------------ helpers

    def plan(self, frame: Frame, kind: str, **details) -> None:
        """Dry-run: add what this statement would do to the plan."""
        self.rt.recorder.action(frame, kind, **details)

    def time_left(self, frame: Frame) -> float | None:
        """Seconds until the step's timeout (None without one)."""
        if frame.step.deadline is None:
            return None
        return frame.step.deadline - time.monotonic()

    def duration(self, expr, frame: Frame, what: str):
        value = self.value(expr, frame)  # type: ignore[attr-defined]
        if isinstance(value, (Duration, Unknown)):
            return value
        raise StepFailed(f"line {expr.span.line}: `{what}` needs a duration, got "
                         f"{to_text(value)!r}")

    # ------------------------------------------------------------------ commands

    def command(self, command: str, frame: Frame, capture: bool) -> shell.CommandResult:
        """Run one shell command for the current step, recorded and streamed."""
        rt = self.rt
        step = frame.step
        left = self.time_left(frame)
        if left is not None and left <= 0:
            raise StepFailed(f"timed out (timeout {step_timeout_text(frame)})")
        started = rt.record("command_started", step=step.name, command=command,
                            cwd=str(step.cwd), phase=frame.phase)
        out_log, err_log = rt.recorder.output_paths(started["seq"], step.name)
        result = shell.run_command(
            command, env={**rt.base_env, **step.env}, cwd=str(step.cwd), masker=rt.masker,
            stdout_log=out_log, stderr_log=err_log, timeout=left, capture=capture,
            echo=rt.display.output)
        run_dir = rt.recorder.run_dir
        rt.record(
            "command_finished", step=step.name, command=command, cwd=str(step.cwd),
            exit_code=result.exit_code, duration_ms=result.duration_ms,
            stdout={**_digest(result.stdout), "log": str(out_log.relative_to(run_dir))},
            stderr={**_digest(result.stderr), "log": str(err_log.relative_to(run_dir))},
            log=str(out_log.relative_to(run_dir)), timed_out=result.timed_out,
            phase=frame.phase)
        if result.interrupted:
            raise Interrupted()
        if result.timed_out:
            raise StepFailed(f"timed out (timeout {step_timeout_text(frame)}); the command's "
                             "process group was stopped")
        return result

    def command_failure(self, result: shell.CommandResult, command: str) -> str:
        """One line saying why a command failed."""
        tail = result.stderr.tail.strip().splitlines()
        last = f": {tail[-1][:200]}" if tail else ""
        first_line = command.strip().splitlines()[0] if command.strip() else command
        shown = self.rt.mask(first_line)[:80]
        return f"command exited with {result.exit_code} ({shown}){last}"

    # ------------------------------------------------------------------ http

    def http(self, st: n.Http, frame: Frame, strict: bool):
        """Make (or, in a dry-run, plan) an HTTP request; strict fails outside 200-399."""
        url = self.text(st.url, frame)  # type: ignore[attr-defined]
        headers = {self.text(h.name, frame): to_text(self.value(h.value, frame))  # type: ignore[attr-defined]
                   for h in st.headers}
        body = self.value(st.body, frame) if st.body is not None else None  # type: ignore[attr-defined]
        method = st.method.name.upper()
        if self.rt.dry:
            self.plan(frame, "http", method=method, url=self.rt.mask(url),
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
        left = self.time_left(frame)
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

    # ------------------------------------------------------------------ checks and watches

    def exec_check(self, st: n.CheckStatement, frame: Frame) -> None:
        title = self.text(st.title, frame)  # type: ignore[attr-defined]
        within = self.duration(st.within, frame, "within") if st.within is not None else None
        every = self.duration(st.every, frame, "every") if st.every is not None else None
        self.run_check(title, st.probe, st.expects, within, every, frame)

    def run_check(self, title: str, probe, expects, within, every, frame: Frame) -> None:
        """Poll the probe until every expectation holds or `within` has passed."""
        if self.rt.dry:
            self.plan_probe(frame, "check", title, probe, expects,
                            polling=f"within {within} every {every}" if within else None)
            return
        start = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            results = self.evaluate(probe, expects, frame)
            if all(r["ok"] for r in results):
                self.rt.record("check_passed", step=frame.step.name, phase=frame.phase,
                               title=title, attempts=attempts, expectations=results)
                self.rt.display.line(f"    ✓ check: {self.rt.mask(title)}", "green")
                return
            pause = every.seconds if every is not None else 1.0
            elapsed = time.monotonic() - start
            if within is None or elapsed + pause > within.seconds:
                break
            left = self.time_left(frame)
            if left is not None and left < pause:
                break
            self.rt.interrupts.sleep(pause)
        self.rt.record("check_failed", step=frame.step.name, phase=frame.phase, title=title,
                       attempts=attempts, expectations=results)
        failed = "; ".join(f"{r['expr']} (actual: {r['actual']})" for r in results if not r["ok"])
        self.rt.display.line(self.rt.mask(f"    ✗ check: {title}: {failed}"), "red")
        raise StepFailed(f"check {title!r} failed after {attempts} attempt"
                         f"{'s' if attempts != 1 else ''}: {failed}")

    def exec_watch(self, st: n.Watch, frame: Frame) -> None:
        title = self.text(st.title, frame)  # type: ignore[attr-defined]
        window = self.duration(st.duration, frame, "watch … for")
        every = self.duration(st.every, frame, "watch … every")
        tolerate = self.value(st.tolerate, frame) if st.tolerate is not None else 0  # type: ignore[attr-defined]
        if self.rt.dry:
            self.plan_probe(frame, "watch", title, st.probe, st.expects,
                            polling=f"for {window} every {every}, tolerate {tolerate}")
            return
        if not isinstance(tolerate, int) or isinstance(tolerate, bool):
            raise StepFailed(f"`tolerate` needs an int, got {to_text(tolerate)!r}")
        self.run_watch(title, st, window, every, tolerate, frame)

    def run_watch(self, title, st: n.Watch, window, every, tolerate: int, frame: Frame) -> None:
        """Sample at 0, E, 2E … while under the window; fail once misses exceed `tolerate`."""
        start = time.monotonic()
        samples = misses = 0
        results: list = []
        while True:
            samples += 1
            results = self.evaluate(st.probe, st.expects, frame)
            if not all(r["ok"] for r in results):
                misses += 1
                self.rt.display.line(f"    · sample {samples}: miss {misses}/{tolerate + 1}",
                                     "yellow")
                if misses > tolerate:
                    self.rt.record("check_failed", step=frame.step.name, phase=frame.phase,
                                   title=title, attempts=samples, misses=misses,
                                   expectations=results)
                    failed = "; ".join(f"{r['expr']} (actual: {r['actual']})"
                                       for r in results if not r["ok"])
                    raise StepFailed(f"watch {title!r}: {misses} miss"
                                     f"{'es' if misses != 1 else ''} (tolerates {tolerate}): "
                                     f"{failed}")
            next_at = samples * every.seconds
            if next_at >= window.seconds or every.ms <= 0:
                break
            self.rt.interrupts.sleep(max(0.0, start + next_at - time.monotonic()))
        self.rt.record("check_passed", step=frame.step.name, phase=frame.phase, title=title,
                       attempts=samples, misses=misses, expectations=results)
        self.rt.display.line(self.rt.mask(f"    ✓ watch: {title} ({samples} samples, "
                                          f"{misses} misses)"), "green")

    def plan_probe(self, frame: Frame, kind: str, title: str, probe, expects, polling) -> None:
        from .statements import source_text

        self.plan(frame, kind, title=self.rt.mask(title), polling=polling,
                  expects=[source_text(frame, e.expr) for e in expects])
        inner = Frame(frame.step, frame.module, frame.locals, frame.phase, frame.depth + 1)
        if probe.kind == "run":
            command = self.text(probe.command, inner, quote=True)  # type: ignore[attr-defined]
            self.plan(inner, "run", command=self.rt.mask(command), into=None)
        else:
            self.http(probe, inner, strict=False)

    def sample(self, probe, frame: Frame) -> Sample:
        """Run the probe once: the names its expectations can read."""
        if probe.kind == "run":
            command = self.text(probe.command, frame, quote=True)  # type: ignore[attr-defined]
            result = self.command(command, frame, capture=True)
            # Trimmed like `into`: `expect stdout == "ok"` holds for `echo ok`.
            names = {"exit_code": result.exit_code, "stdout": (result.captured or "").strip(),
                     "stderr": result.stderr.tail, "duration": Duration(result.duration_ms)}
            return Sample(names)
        response = self.http(probe, frame, strict=False)
        error = response.pop("error", None)
        return Sample(response, error)

    def evaluate(self, probe, expects, frame: Frame) -> list[dict]:
        """One attempt: each expectation with its actual value and whether it holds."""
        from .statements import source_text

        sample = self.sample(probe, frame)
        if sample.error is not None:
            return [{"expr": f"{probe.method.name.upper()} request", "actual": sample.error,
                     "ok": False}]
        if not expects:
            if probe.kind == "run":
                code = sample.names["exit_code"]
                return [{"expr": "exit_code == 0", "actual": f"exit_code = {code}",
                         "ok": code == 0}]
            status = sample.names["status"]
            return [{"expr": "status in 200..399", "actual": f"status = {status}",
                     "ok": 200 <= status <= 399}]
        # A task sees its own parameters first (LANGUAGE.md §4), probe results after them.
        scope = Frame(frame.step, frame.module, {**sample.names, **frame.locals}, frame.phase)
        evaluator = self.rt.evaluator(scope)
        results = []
        for expect in expects:
            text = source_text(frame, expect.expr)
            try:
                ok = evaluator.eval(expect.expr)
                if not isinstance(ok, bool):
                    raise EvalError(f"`expect` needs a bool, got {to_text(ok)!r}")
                actual = _actual(expect.expr, evaluator, frame)
            except EvalError as error:
                ok, actual = False, f"error: {error}"
            results.append({"expr": text, "actual": actual, "ok": ok})
        return results


def _actual(expr, evaluator, frame: Frame) -> str:
    """What the expectation saw: the operands of a comparison, or the value itself."""
    from .statements import source_text

    if expr.kind == "binary" and expr.op not in ("and", "or"):
        parts = []
        for side in (expr.left, expr.right):
            if side.kind in ("literal", "duration", "string", "list"):
                continue
            parts.append(f"{source_text(frame, side)} = {_short(evaluator.eval(side))}")
        return ", ".join(parts) or _short(evaluator.eval(expr))
    return f"{source_text(frame, expr)} = {_short(evaluator.eval(expr))}"


def _short(value) -> str:
    text = to_text(value)
    text = text if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(text)
    return text if len(text) <= 200 else text[:197] + "…"


def _digest(stream: shell.StreamDigest) -> dict:
    return {"bytes": stream.bytes, "sha256": stream.sha256, "tail": stream.tail}


def _response(status: int, body: bytes, headers) -> dict:
    return {"status": status, "body": body.decode("utf-8", "replace"),
            "headers": {k.lower(): v for k, v in headers.items()}}


def step_timeout_text(frame: Frame) -> str:
    """The step's timeout as written, for messages."""
    timeout = frame.step.unit.timeout
    if timeout is None:
        return "?"
    return getattr(timeout, "text", None) or "set"
