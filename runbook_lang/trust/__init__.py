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
"""

from __future__ import annotations

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

__all__ = [
    "APPROVAL_NAMESPACE", "HEAD_NAMESPACE", "ApprovalCheck", "ApprovalStatement",
    "HeadStatement", "SealCheck", "SignerLine", "SignersError", "SignersFile", "Signed",
    "SigningKeyError", "SshKeygenMissing", "StatementError", "ToolFailed", "TrustError",
    "Verdict", "check_approval", "check_seal", "find_principals", "is_self_approval",
    "read_signers", "seal_head", "sign", "sign_approval", "utc_now", "verify",
]
