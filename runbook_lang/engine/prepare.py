"""Everything a run settles before its first step, and everything it refuses there.

Static errors, params, missing secrets, unknown `--from`/`--fail-at`/`--approve` names and a
`--from` that skips a variable's only setter are all refused (exit 2) before anything runs
(LANGUAGE.md §6.4, §8). Then the lets of every module are computed, once.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..dataclass import dataclass, field
from ..errors import EvalError, LoadError, ParamError, Refused
from ..evaluation.evaluate import Evaluator
from ..evaluation.params import load_params_file, resolve_params, split_assignments
from ..evaluation.values import Unknown, to_text
from ..limits import MAX_SECRET_BYTES, TooLarge, read_bounded, size_text
from ..syntax.diagnostics import Diagnostic
from ..syntax.loader import Loader, Module
from ..syntax.sourcemap import SourceMap
from .runtime import Frame, RunOptions, Runtime, StepRun


class StaticErrors(Refused):
    """The file does not pass `runbook check`: nothing runs. Carries the diagnostics."""

    def __init__(self, message: str, diagnostics: list[Diagnostic], sources: SourceMap) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics
        self.sources = sources


@dataclass
class ParamInput:
    """Params as the operator gave them: `--param NAME=VALUE`… and a YAML file."""

    assignments: list[str] = field(default_factory=list)
    file: str | None = None


def operator_name(explicit: str | None) -> str:
    """`--as NAME`, else RUNBOOK_USER, else the login name."""
    if explicit:
        return explicit
    if os.environ.get("RUNBOOK_USER"):
        return os.environ["RUNBOOK_USER"]
    # As getpass.getuser() finds it (without importing getpass and termios for every run).
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return "unknown"


def load_checked(path: str) -> Module:
    """Load and analyse; raise StaticErrors (with the diagnostics) on any error."""
    from ..analysis.analyzer import analyse

    loader = Loader()
    try:
        module = loader.load(Path(path), path)
    except LoadError as error:
        raise Refused(str(error)) from None
    errors = [d for d in analyse(module) if d.is_error]
    if errors:
        raise StaticErrors(f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}; "
                           "nothing was run", errors, SourceMap(loader))
    return module


def parse_approvals(items: list[str] | None, module: Module) -> dict[str, list[str | None]]:
    """`--approve GATE[=WHO]`… by gate; an unknown gate is refused."""
    approvals: dict[str, list[str | None]] = {}
    gates = {g.name.name for g in module.runbook.of("gate")}
    for item in items or []:
        gate, sep, who = item.partition("=")
        if gate not in gates:
            raise Refused(f"--approve {item}: no gate named {gate!r}" + suggest(gate, gates))
        approvals.setdefault(gate, []).append(who.strip() if sep and who.strip() else None)
    return approvals


def check_addresses(module: Module, from_step: str | None, fail_at: str | None) -> None:
    """`--from` and `--fail-at` name a step, check or gate of the file."""
    names = [u.name.name for u in module.runbook.units]
    for flag, value in (("--from", from_step), ("--fail-at", fail_at)):
        if value is not None and value not in names and value.split("[")[0] not in names:
            raise Refused(f"{flag} {value}: no step, check or gate named {value!r}"
                          + suggest(value, names))
    check_fail_at(fail_at, module)


def check_fail_at(target: str | None, module: Module) -> None:
    """--fail-at names a step or check that can fail: not a gate, and `NAME[item]` only for
    a `for` step (a drill that silently fails nothing would pass for a good one)."""
    if target is None:
        return
    base, bracket, _ = target.partition("[")
    unit = next(u for u in module.runbook.units if u.name.name == base)
    if unit.kind == "gate":
        raise Refused(f"--fail-at {target}: {base} is a gate; a gate is approved or rejected, "
                      "not failed (leave it unapproved, or reject it with runbook approve "
                      "--reject)")
    if bracket and unit.loop_over is None and getattr(unit, "on", None) is None:
        raise Refused(f"--fail-at {target}: {base} is not a `for` step or a step on hosts; "
                      f"use --fail-at {base}")


def suggest(name: str, names) -> str:
    """` (did you mean 'x'?)` for a close name, else nothing."""
    import difflib  # only for a mistake: not loaded by every run

    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_param_values(rt: Runtime, given: ParamInput) -> None:
    """Params from the command line over the params file over the defaults."""
    try:
        cli = split_assignments(given.assignments)
        file_values = load_params_file(Path(given.file)) if given.file else {}
        rt.scope.params = resolve_params(
            rt.module.runbook.of("param"), cli, file_values,
            lambda values: Evaluator(lambda name: _param_lookup(values, name)))
    except ParamError as error:
        raise Refused(str(error)) from None


def complete_runtime(rt: Runtime) -> None:
    """Secrets, the setter map, the --from check and the lets, once params are known."""
    from ..analysis.analyzer import Analyser

    rt.secret_status = load_secrets(rt)
    settle_hosts(rt)
    rt.scope.setters = {name: sym.setter for name, sym in Analyser(rt.module, True)
                        .collect_assigned().items() if sym.setter}
    check_from(rt)
    try:
        evaluate_globals(rt, rt.module)
    except EvalError as error:
        raise Refused(f"cannot compute a let: {error.render(rt.mask)}") from None
    check_instances(rt)


def settle_hosts(rt: Runtime) -> None:
    """The inventory, `--limit`, `--forks`; `hostvars` and `groups` when there is one."""
    from .targets import settle_targets

    options = rt.options
    rt.targets = settle_targets(rt.module, options.limit, options.forks, options.ssh_config)
    inventory = rt.targets.inventory
    if inventory is not None:
        rt.scope.builtins["hostvars"] = inventory.hostvars()
        rt.scope.builtins["groups"] = inventory.groups_map()


def check_instances(rt: Runtime) -> None:
    """`--from NAME[item]` and `--fail-at NAME[item]` name an instance NAME will have, where
    its list (or its hosts) is known before the run (else the step itself refuses when it
    gets there)."""
    from .interpreter import instance_names

    for flag, target in (("--from", rt.options.from_step), ("--fail-at", rt.options.fail_at)):
        if target is None or "[" not in target:
            continue
        base = target.partition("[")[0]
        unit = next((u for u in rt.module.runbook.units if u.name.name == base), None)
        on = getattr(unit, "on", None)
        if on is not None:
            from ..targets.model import TargetError

            try:
                hosts = rt.targets.hosts(rt.evaluator(None).eval(on))
            except (EvalError, TargetError):
                continue  # only known at run time, or the step fails and says why
            names = [f"{base}[{host.name}]" for host in hosts]
            if target not in names:
                known = ", ".join(names) if names else "none: --limit selects none of its hosts"
                raise Refused(f"{flag} {target}: {base} has no such host (instances: "
                              f"{known})")
            continue
        loop_over = getattr(unit, "loop_over", None)
        if loop_over is None:
            continue
        try:
            items = rt.evaluator(None).eval(loop_over)
        except EvalError:
            continue  # set by an earlier step: only known at run time
        if not isinstance(items, list):
            continue
        names = instance_names(base, items)
        if target not in names:
            known = ", ".join(names) if names else "none: the list is empty"
            raise Refused(f"{flag} {target}: {base} has no such instance (instances: {known})")


def _param_lookup(values: dict, name: str):
    if name in values:
        return values[name]
    raise EvalError(f"`{name}` is not a param defined before this one")


def load_secrets(rt: Runtime) -> list[dict]:
    """Read every secret; missing ones stop a real run and are reported by a dry-run."""
    status = []
    missing = []
    for secret in rt.module.runbook.of("secret"):
        name, ref = secret.name.name, secret.ref
        where = f"env {ref}" if secret.source == "env" else f"file {ref}"
        value = None
        if secret.source == "env":
            value = os.environ.get(ref)
            rt.scope.secret_env.add(ref)
        else:
            path = Path(ref).expanduser()
            if not path.is_absolute():
                path = rt.base_dir / path
            try:
                value = read_bounded(path, MAX_SECRET_BYTES).decode("utf-8").rstrip("\n")
            except FileNotFoundError:
                value = None
            except (OSError, UnicodeDecodeError, TooLarge) as error:
                reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else \
                    f"too large: a secret file is at most {size_text(MAX_SECRET_BYTES)}" \
                    if isinstance(error, TooLarge) else (error.strerror or str(error))
                missing.append(f"secret `{name}`: cannot read file {ref}: {reason}")
                rt.scope.secrets[name] = rt.scope.placeholder(
                    name, f"secret from {where}: unreadable")
                status.append({"name": name, "source": where, "status": "unreadable"})
                continue
        if value is None or value == "":
            missing.append(f"secret `{name}` is missing: set {where}")
            rt.scope.secrets[name] = rt.scope.placeholder(name, f"secret from {where}: missing")
            status.append({"name": name, "source": where, "status": "missing"})
            continue
        rt.scope.secrets[name] = value
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
    rt.scope.globals[module.path] = scope
    if module is rt.module:
        scope.update(rt.scope.params)
        scope.update(rt.scope.secrets)
        secrets.update(rt.scope.secrets)
    scope["__secrets__"] = secrets
    frame = None if module is rt.module else Frame(StepRun(None, "", "", ""), module)
    for let in module.runbook.of("let"):
        value = rt.evaluator(frame).eval(let.value)
        scope[let.name.name] = value
        if rt.scope.is_tainted(let.value, frame):
            secrets.add(let.name.name)
            if not isinstance(value, Unknown):
                rt.scope.mask_derived(let.value, to_text(value), None)


def check_from(rt: Runtime) -> None:
    """--from: a later read of a variable only earlier steps set is an error up front."""
    target = rt.options.from_step
    if target is None:
        return
    from ..syntax.walk import names_in

    units = rt.module.runbook.units
    start = next(i for i, u in enumerate(units)
                 if u.name.name == target or target.startswith(u.name.name + "["))
    skipped = {u.name.name for u in units[:start]}
    setters = rt.scope.setters
    later_setters = {name for name, step in setters.items() if step not in skipped}
    problems = []
    for unit in units[start:]:
        for name in sorted(set(_reads(unit, names_in))):
            setter = setters.get(name)
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
        for name in type(node).fields:
            if name != "span":
                stack.append(getattr(node, name))
    return found


def new_options(module: Module, *, dry_run: bool = False, yes: bool = False,
                approvals: list[str] | None = None, as_name: str | None = None,
                from_step: str | None = None, fail_at: str | None = None,
                interactive: bool = False, argv: list[str] | None = None,
                output_json: bool = False, limit: str | None = None,
                forks: int | None = None, ssh_config: str | None = None) -> RunOptions:
    """Check what the operator asked for against the file, and fix it for the run."""
    from .targets import DEFAULT_FORKS, ssh_config_from_env

    parsed = parse_approvals(approvals, module)
    check_addresses(module, from_step, fail_at)
    return RunOptions(dry_run=dry_run, yes=yes, approvals=parsed,
                      operator=operator_name(as_name), host=os.uname().nodename,
                      from_step=from_step, fail_at=fail_at, interactive=interactive,
                      argv=list(argv or []), output_json=output_json, limit=limit,
                      forks=forks if forks is not None else DEFAULT_FORKS,
                      ssh_config=ssh_config_from_env(ssh_config))
