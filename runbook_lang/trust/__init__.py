"""SSH signatures for approvals and for the transcript's head (LANGUAGE.md §13).

The layer stands on its own: it knows statements, signatures and an allowed-signers file,
not runs, stores or the command line.

- `statements`: the canonical bytes that get signed (`ApprovalStatement`, `HeadStatement`),
  and `Signed`, a statement with its signature.
- `sshsig`: `sign`, `verify`, `find_principals` over `ssh-keygen -Y` (as git signs with SSH).
- `approvals`: `sign_approval`, `check_approval`, `is_self_approval`.
- `heads`: `seal_head`, `check_seal`.
- `signers`: `read_signers`, the lines of an allowed-signers file ssh-keygen would skip.
- `errors`: what stops signing or checking from happening (a bad signature is a verdict,
  never an exception).

Only the standard library is imported here; ssh-keygen runs only when a function is called.
Each name is imported from its module on first use (a run that signs nothing, most runs,
never loads the signing code).
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING
from ..lazy import exports

# Where each public name lives.
_HOMES = {
    "approvals": ("ApprovalCheck", "check_approval", "is_self_approval", "sign_approval"),
    "errors": ("SignersError", "SigningKeyError", "SshKeygenMissing", "StatementError",
               "ToolFailed", "TrustError"),
    "heads": ("SealCheck", "check_seal", "seal_head"),
    "signers": ("SignerLine", "SignersFile", "read_signers"),
    "sshsig": ("Verdict", "find_principals", "sign", "verify"),
    "statements": ("APPROVAL_NAMESPACE", "HEAD_NAMESPACE", "ApprovalStatement",
                   "HeadStatement", "Signed", "utc_now"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "APPROVAL_NAMESPACE", "HEAD_NAMESPACE", "ApprovalCheck", "ApprovalStatement",
    "HeadStatement", "SealCheck", "SignerLine", "SignersError", "SignersFile", "Signed",
    "SigningKeyError", "SshKeygenMissing", "StatementError", "ToolFailed", "TrustError",
    "Verdict", "check_approval", "check_seal", "find_principals", "is_self_approval",
    "read_signers", "seal_head", "sign", "sign_approval", "utc_now", "verify",
]


__getattr__ = exports(__name__, globals(), _HOME_OF)


if TYPE_CHECKING:
    from .approvals import ApprovalCheck, check_approval, is_self_approval, sign_approval
    from .errors import (
        SignersError,
        SigningKeyError,
        SshKeygenMissing,
        StatementError,
        ToolFailed,
        TrustError,
    )
    from .heads import SealCheck, check_seal, seal_head
    from .signers import SignerLine, SignersFile, read_signers
    from .sshsig import Verdict, find_principals, sign, verify
    from .statements import (
        APPROVAL_NAMESPACE,
        HEAD_NAMESPACE,
        ApprovalStatement,
        HeadStatement,
        Signed,
        utc_now,
    )
