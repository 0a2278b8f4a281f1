"""Checks and watches: a probe (a command or a request) and expectations on its result.

A check polls its probe until every expectation holds or its window has passed; a watch
samples it for a whole window and fails once the misses exceed what it tolerates
(LANGUAGE.md §4, §10).
"""

from __future__ import annotations

import time

from ..dataclass import dataclass
from ..errors import EvalError, StepFailed
from ..evaluation.values import Duration, to_text
from ..syntax import nodes as n
from .command import run_command
from .http import Requests
from .runtime import Frame, Runtime


@dataclass
class Sample:
    """One probe attempt: the names `expect` sees, and why it could not run (if so)."""

    names: dict
    error: str | None = None


class Checks:
    """Runs (or plans) checks and watches."""

    def __init__(self, rt: Runtime, requests: Requests) -> None:
        self.rt = rt
        self.requests = requests

    def exec_check(self, st: n.CheckStatement, frame: Frame) -> None:
        title = self.rt.text(st.title, frame)
        within = self.rt.duration(st.within, frame, "within") if st.within is not None else None
        every = self.rt.duration(st.every, frame, "every") if st.every is not None else None
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
            left = self.rt.time_left(frame)
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
        title = self.rt.text(st.title, frame)
        window = self.rt.duration(st.duration, frame, "watch … for")
        every = self.rt.duration(st.every, frame, "watch … every")
        tolerate = self.rt.value(st.tolerate, frame) if st.tolerate is not None else 0
        if self.rt.dry:
            self.plan_probe(frame, "watch", title, st.probe, st.expects,
                            polling=f"for {window} every {every}, tolerate {tolerate}")
            return
        if not isinstance(tolerate, int) or isinstance(tolerate, bool):
            raise StepFailed(f"`tolerate` needs an int, got {self.rt.shown(tolerate)}")
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
        self.rt.plan(frame, kind, title=self.rt.mask(title), polling=polling,
                  expects=[frame.source(e.expr) for e in expects])
        inner = frame.inner()
        if probe.kind == "run":
            command = self.rt.text(probe.command, inner, quote=True)
            self.rt.plan(inner, "run", command=self.rt.mask(command), into=None)
        else:
            self.requests.request(probe, inner, strict=False)

    def sample(self, probe, frame: Frame) -> Sample:
        """Run the probe once: the names its expectations can read."""
        if probe.kind == "run":
            command = self.rt.text(probe.command, frame, quote=True)
            result = run_command(self.rt, command, frame, capture=True)
            # Trimmed like `into`: `expect stdout == "ok"` holds for `echo ok`.
            names = {"exit_code": result.exit_code, "stdout": (result.captured or "").strip(),
                     "stderr": result.stderr.tail, "duration": Duration(result.duration_ms)}
            return Sample(names)
        response = self.requests.request(probe, frame, strict=False)
        error = response.pop("error", None)
        return Sample(response, error)

    def evaluate(self, probe, expects, frame: Frame) -> list[dict]:
        """One attempt: each expectation with its actual value and whether it holds."""
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
            text = frame.source(expect.expr)
            try:
                ok = evaluator.eval(expect.expr)
                if not isinstance(ok, bool):
                    raise EvalError("`expect` needs a bool, got {0}", to_text(ok), width=200)
                actual = _actual(expect.expr, evaluator, frame, self.rt.mask)
            except EvalError as error:
                ok, actual = False, f"error: {error.render(self.rt.mask)}"
            results.append({"expr": text, "actual": actual, "ok": ok})
        return results


def _actual(expr, evaluator, frame: Frame, mask) -> str:
    """What the expectation saw: the operands of a comparison, or the value itself."""
    if expr.kind == "binary" and expr.op not in ("and", "or"):
        parts = []
        for side in (expr.left, expr.right):
            if side.kind in ("literal", "duration", "string", "list"):
                continue
            parts.append(f"{frame.source(side)} = {_short(evaluator.eval(side), mask)}")
        return ", ".join(parts) or _short(evaluator.eval(expr), mask)
    return f"{frame.source(expr)} = {_short(evaluator.eval(expr), mask)}"


def _short(value, mask) -> str:
    """An actual value as a check report shows it: masked first, then quoted and cut, so
    that no escaped or shortened form of a secret gets past the mask."""
    text = mask(to_text(value))
    text = text if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(text)
    return text if len(text) <= 200 else text[:197] + "…"
