"""`runbook run FILE`: check, resolve params and secrets, then run or plan (--dry-run).

Everything that can be refused is refused before the first step: static errors, params,
missing secrets, unknown --from/--fail-at/--approve names, a held lock (all exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..analysis.analyzer import Analyser, analyse
from ..engine.interpreter import Interpreter, Outcome
from ..engine.plan import Plan, render_plan
from ..engine.runtime import RunOptions, Runtime
from ..errors import EvalError, LoadError, ParamError
from ..evaluation.evaluate import Evaluator
from ..evaluation.params import load_params_file, resolve_params, split_assignments
from ..evaluation.values import Unknown, to_json, to_text
from ..reporting.display import Display
from ..reporting.output import print_diagnostics
from ..store.transcript import new_run_id
from ..syntax.loader import Loader, Module
from ..syntax.sourcemap import SourceMap

EXIT_USAGE = 2


class Refused(Exception):
    """The run cannot start; the message says why (exit 2)."""


def operator_name(explicit: str | None) -> str:
    """`--as NAME`, else RUNBOOK_USER, else the login name."""
    if explicit:
        return explicit
    if os.environ.get("RUNBOOK_USER"):
        return os.environ["RUNBOOK_USER"]
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def load_checked(path: str) -> Module:
    """Load and analyse; print diagnostics; raise Refused on errors."""
    loader = Loader()
    try:
        module = loader.load(Path(path), path)
    except LoadError as error:
        raise Refused(str(error)) from None
    diagnostics = analyse(module)
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        print_diagnostics(errors, SourceMap(loader))
        raise Refused(f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}; "
                      "nothing was run")
    return module


def run_command(args) -> int:
    """Entry point of `runbook run`."""
    try:
        module = load_checked(args.file)
        options = build_options(args, module)
        rt = prepare_runtime(module, options, args)
    except Refused as error:
        sys.stderr.write(f"runbook: error: {error}\n")
        if args.output == "json":
            # Automation reading stdout gets an answer too, not an empty stream.
            sys.stdout.write(json.dumps({"status": "refused", "exit_code": EXIT_USAGE,
                                         "error": str(error)}, ensure_ascii=False) + "\n")
        return EXIT_USAGE
    if options.dry_run:
        return dry_run(rt, args)
    from .execute import execute_run

    return execute_run(rt, args)


def build_approvals(items: list[str] | None, module: Module) -> dict[str, list[str | None]]:
    """`--approve GATE[=WHO]`… by gate; an unknown gate is refused."""
    approvals: dict[str, list[str | None]] = {}
    gates = {g.name.name for g in module.ast.of("gate")}
    for item in items or []:
        gate, sep, who = item.partition("=")
        if gate not in gates:
            raise Refused(f"--approve {item}: no gate named {gate!r}"
                          + _suggest(gate, gates))
        approvals.setdefault(gate, []).append(who.strip() if sep and who.strip() else None)
    return approvals


def build_options(args, module: Module) -> RunOptions:
    approvals = build_approvals(args.approve, module)
    names = unit_names(module)
    for flag, value in (("--from", args.from_step), ("--fail-at", args.fail_at)):
        if value is not None and value not in names and value.split("[")[0] not in names:
            raise Refused(f"{flag} {value}: no step, check or gate named {value!r}"
                          + _suggest(value, names))
    check_fail_at(args.fail_at, module)
    return RunOptions(
        dry_run=args.dry_run, yes=args.yes, approvals=approvals,
        operator=operator_name(args.as_name), host=socket.gethostname(),
        from_step=args.from_step, fail_at=args.fail_at,
        interactive=sys.stdin.isatty() and not args.dry_run,
        argv=["runbook", *sys.argv[1:]], output_json=args.output == "json",
        transcript_dir=Path(args.transcript_dir) if args.transcript_dir else None)


def check_fail_at(target: str | None, module: Module) -> None:
    """--fail-at names a step or check that can fail: not a gate, and `NAME[item]` only for
    a `for` step (a drill that silently fails nothing would pass for a good one)."""
    if target is None:
        return
    base, bracket, _ = target.partition("[")
    unit = next(u for u in module.ast.units if u.name.name == base)
    if unit.kind == "gate":
        raise Refused(f"--fail-at {target}: {base} is a gate; a gate is approved or rejected, "
                      "not failed (leave it unapproved, or reject it with runbook approve "
                      "--reject)")
    if bracket and unit.loop_over is None:
        raise Refused(f"--fail-at {target}: {base} is not a `for` step; use --fail-at {base}")


def unit_names(module: Module) -> list[str]:
    return [u.name.name for u in module.ast.units]


def _suggest(name: str, names) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def prepare_runtime(module: Module, options: RunOptions, args) -> Runtime:
    """Params, secrets, lets and the setter map, all before anything runs."""
    rt = new_runtime(module, options)
    try:
        cli = split_assignments(args.param or [])
        file_values = load_params_file(Path(args.params)) if args.params else {}
        rt.params = resolve_params(
            module.ast.of("param"), cli, file_values,
            lambda values: Evaluator(lambda name: _param_lookup(values, name)))
    except ParamError as error:
        raise Refused(str(error)) from None
    complete_runtime(rt)
    return rt


def new_runtime(module: Module, options: RunOptions) -> Runtime:
    """A runtime whose live output goes to stdout (stderr when stdout carries JSON)."""
    display = Display(sys.stderr if options.output_json else sys.stdout)
    rt = Runtime(module, options, display)
    # `run_id` is always defined, lets included: the id exists before anything is computed.
    rt.builtins["run_id"] = Unknown("run_id: assigned when the run starts") \
        if options.dry_run else new_run_id()
    return rt


def complete_runtime(rt: Runtime) -> None:
    """Secrets, the setter map, the --from check and the lets, once params are known."""
    module = rt.module
    rt.secret_status = load_secrets(rt)
    rt.setters = {name: sym.setter for name, sym in Analyser(module, True)
                  .collect_assigned().items() if sym.setter}
    check_from(rt)
    try:
        evaluate_globals(rt, module)
    except EvalError as error:
        raise Refused(f"cannot compute a let: {error}") from None


def _param_lookup(values: dict, name: str):
    if name in values:
        return values[name]
    raise EvalError(f"`{name}` is not a param defined before this one")


def load_secrets(rt: Runtime) -> list[dict]:
    """Read every secret; missing ones stop a real run and are reported by a dry-run."""
    status = []
    missing = []
    for secret in rt.module.ast.of("secret"):
        name, ref = secret.name.name, secret.ref
        where = f"env {ref}" if secret.source == "env" else f"file {ref}"
        value = None
        if secret.source == "env":
            value = os.environ.get(ref)
        else:
            path = Path(ref).expanduser()
            if not path.is_absolute():
                path = rt.base_dir / path
            try:
                value = path.read_text(encoding="utf-8").rstrip("\n")
            except FileNotFoundError:
                value = None
            except (OSError, UnicodeDecodeError) as error:
                reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else \
                    (error.strerror or str(error))
                missing.append(f"secret `{name}`: cannot read file {ref}: {reason}")
                rt.secrets[name] = Unknown(f"secret {name}: unreadable")
                status.append({"name": name, "source": where, "status": "unreadable"})
                continue
        if value is None or value == "":
            missing.append(f"secret `{name}` is missing: set {where}")
            rt.secrets[name] = Unknown(f"secret {name}: missing")
            status.append({"name": name, "source": where, "status": "missing"})
            continue
        rt.secrets[name] = value
        rt.masker.add(value)
        status.append({"name": name, "source": where, "status": "present (value hidden)"})
    if missing and not rt.dry:
        raise Refused("; ".join(missing) + " (nothing was run)")
    return status


def evaluate_globals(rt: Runtime, module: Module, seen: set | None = None) -> None:
    """Params, secrets and lets of the main file and every imported module, in file order."""
    seen = seen if seen is not None else set()
    if module.path in seen or module.ast is None:
        return
    seen.add(module.path)
    for imported in module.imports.values():
        if imported is not None:
            evaluate_globals(rt, imported, seen)
    scope: dict = {}
    secrets: set[str] = set()
    rt.globals[module.path] = scope
    if module is rt.module:
        scope.update(rt.params)
        scope.update(rt.secrets)
        secrets.update(rt.secrets)
    scope["__secrets__"] = secrets
    for let in module.ast.of("let"):
        value = rt.evaluator(None if module is rt.module else _module_frame(rt, module)) \
            .eval(let.value)
        scope[let.name.name] = value
        if rt.is_tainted(let.value, None if module is rt.module else _module_frame(rt, module)):
            secrets.add(let.name.name)
            if not isinstance(value, Unknown):
                rt.mask_derived(let.value, to_text(value), None)


def _module_frame(rt: Runtime, module: Module):
    from ..engine.runtime import Frame, StepRun

    return Frame(StepRun(None, "", "", ""), module)  # type: ignore[arg-type]


def check_from(rt: Runtime) -> None:
    """--from: a later read of a variable only earlier steps set is an error up front."""
    target = rt.options.from_step
    if target is None:
        return
    from ..syntax.walk import names_in

    units = rt.module.ast.units
    start = next(i for i, u in enumerate(units)
                 if u.name.name == target or target.startswith(u.name.name + "["))
    skipped = {u.name.name for u in units[:start]}
    later_setters = {name for name, step in rt.setters.items() if step not in skipped}
    problems = []
    for unit in units[start:]:
        for name in sorted(set(_reads(unit, names_in))):
            setter = rt.setters.get(name)
            if setter in skipped and name not in later_setters:
                problems.append(f"step `{unit.name.name}` reads `{name}`, which only step "
                                f"`{setter}` sets, and --from {target} skips it")
    if problems:
        raise Refused("\n".join(problems))


def _reads(unit, names_in) -> list[str]:
    """Every name an item's expressions read (a shallow walk over its fields)."""
    found: list[str] = []
    stack = [unit]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        kind = getattr(node, "kind", None)
        if kind is None:
            continue
        if kind in ("name", "string", "binary", "unary", "call", "field", "index", "list"):
            found.extend(names_in(node))
            continue
        for name in type(node).model_fields:
            if name != "span":
                stack.append(getattr(node, name))
    return found


# ---------------------------------------------------------------------- dry-run


def dry_run(rt: Runtime, args) -> int:
    """Walk the runbook without effects and print the plan."""
    module = rt.module
    header = module.ast.header
    title = rt.evaluator(None).render(header.title) if header is not None else ""
    plan = Plan(runbook=args.file, title=title,
                params={k: rt.mask(to_text(v)) for k, v in rt.params.items()},
                operator={"user": rt.options.operator, "host": rt.options.host},
                secrets=rt.secret_status)
    if any(s["status"] == "missing" for s in rt.secret_status):
        plan.notes.append("some secrets are not set; a real run would refuse to start "
                          "until they are")
    plan.mask = rt.mask
    rt.recorder = plan
    outcome: Outcome = Interpreter(rt).execute()
    plan.outcome = {"status": outcome.status, "exit_code": outcome.exit_code,
                    "failed_step": outcome.failed_step, "reason": outcome.reason or None}
    gates = [s.name for s in plan.steps if s.kind == "gate" and s.status != "skipped"
             and "pre-approved" not in s.attributes]
    if gates:
        # The plan walks on past each gate; the real run waits there for its approvals.
        plan.outcome["assumes"] = [f"gate {name} is approved" for name in gates]
    if rt.options.output_json:
        sys.stdout.write(json.dumps(plan.to_json(), indent=2, ensure_ascii=False,
                                    default=lambda v: to_json(v) if not isinstance(v, str)
                                    else v) + "\n")
    else:
        sys.stdout.write(render_plan(plan))
    return 0


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)
