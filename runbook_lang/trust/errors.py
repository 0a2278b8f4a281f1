"""Errors of the signature layer: what stops signing or checking from happening at all.

A signature that does not verify is not an error but a verdict (`sshsig.Verdict`,
`approvals.ApprovalCheck`, `heads.SealCheck`): these exceptions are for a missing
`ssh-keygen`, an unusable key, an unreadable signers file, a statement that cannot be built.
Each message is one line a person can act on; all of them are `RunbookError`s, so the command
line reports them without a traceback.
"""

from __future__ import annotations

from ..errors import RunbookError


class TrustError(RunbookError):
    """Base of the signature layer's errors."""


class SshKeygenMissing(TrustError):
    """`ssh-keygen` (or `ssh-add`) is not installed, or not on PATH."""

    def __init__(self, program: str = "ssh-keygen") -> None:
        super().__init__(
            f"{program} was not found on PATH; SSH signatures need the OpenSSH client tools "
            "(8.8 or later). Install them: apt-get install openssh-client (Debian, Ubuntu), "
            "dnf install openssh-clients (Fedora, RHEL); macOS ships them")
        self.program = program


class ToolFailed(TrustError):
    """`ssh-keygen` or `ssh-add` failed in a way that is not a verdict (timeout, crash)."""


class SigningKeyError(TrustError):
    """A signing key cannot be used: missing file, passphrase without an agent, no agent."""


class SignersError(TrustError):
    """The allowed-signers file cannot be used: missing, unreadable, not a file."""


class StatementError(TrustError, ValueError):
    """A statement's fields are invalid, or its bytes are not a canonical statement."""
