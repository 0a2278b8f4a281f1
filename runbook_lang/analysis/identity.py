"""Static checks of who may approve (LANGUAGE.md §6.3, §13): the `signers` file, and gates
whose approvers' identities nothing verifies.

- E222: the header names a signers file that cannot be read: no approval could be verified,
  so nothing runs.
- W307: a line of the signers file that ssh-keygen would skip (an unquoted date, a key cut
  short): that key would then look "not listed", and the approvals it signs would not count.
- W308: without `signers`, a gate that needs distinct people (`require` above 1) or excludes
  the operator (`self_approval false`) counts names anyone can type.
"""

from __future__ import annotations

from pathlib import Path

from ..syntax import nodes as n
from ..syntax.diagnostics import Diagnostic, at_span
from ..syntax.loader import Module


def signers_path(module: Module) -> Path | None:
    """The allowed-signers file the runbook's header names (relative to the runbook), or
    None without one."""
    header = module.ast.header if module.ast is not None else None
    if header is None or not header.signers:
        return None
    return module.path.parent / header.signers


def check_identity(module: Module, has_errors: bool = False) -> list[Diagnostic]:
    """The diagnostics about identities of a main runbook (imported modules' gates never
    run). W308 waits until the file has no errors: a gate that does not check yet (a
    `require` above its approvers) is fixed first."""
    if module.ast is None:
        return []
    header = module.ast.header
    source = module.source.path
    if header is not None and header.signers is not None:
        return _check_signers(module, header, source)
    if has_errors:
        return []
    return [_asserted(gate, source, reason) for gate in module.ast.of("gate")
            if (reason := _needs_identity(gate)) is not None]


def _check_signers(module: Module, header: n.RunbookHeader, source: str) -> list[Diagnostic]:
    from ..trust import SignersError, read_signers

    path = signers_path(module)
    if path is None:  # an empty path: reported by the parser (E116)
        return []
    where = at_span(source, header.signers_span or header.span)
    written = header.signers or ""
    try:
        signers = read_signers(path)
    except SignersError as error:
        return [Diagnostic("error", "E222", str(error).replace(str(path), written, 1), where,
                           ("an allowed-signers file lists who may sign, one `NAME "
                            "ssh-ed25519 AAAA…` line per key (docs/signatures.md)",))]
    # The messages name the file as the runbook writes it, not as this process reached it.
    return [Diagnostic("warning", "W307", problem.replace(str(path), written, 1), where,
                       ("ssh-keygen skips such a line, so approvals signed with its key "
                        "would not count",))
            for problem in signers.problems]


def _needs_identity(gate: n.Gate) -> str | None:
    """Why the gate's approvers must be distinct, verified people (None when it need not)."""
    require = _constant(gate.require)
    if isinstance(require, int) and not isinstance(require, bool) and require > 1:
        return f"needs {require} distinct approvers"
    if _constant(gate.self_approval) is False:
        return "excludes the operator (self_approval false)"
    return None


def _asserted(gate: n.Gate, source: str, reason: str) -> Diagnostic:
    return Diagnostic(
        "warning", "W308",
        f"gate `{gate.name.name}` {reason}, but without `signers` every name is only "
        "asserted: anyone can type any name", at_span(source, gate.name.span),
        ('name an allowed-signers file in the header (`runbook "…" { signers '
         '"allowed_signers" }`) so that every approval is signed (docs/signatures.md)',))


_UNKNOWN = object()


def _constant(expr: object) -> object:
    """A literal's value; anything else is only known at run time (and not guessed)."""
    return expr.value if isinstance(expr, n.Literal_) else _UNKNOWN
