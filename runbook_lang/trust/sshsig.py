"""Sign and verify with `ssh-keygen -Y`, as git does with `gpg.format=ssh`.

- `sign(data, namespace, key)`: armored signature text. `key` is a private key file; or a
  public key file, or a literal public key (``"ssh-ed25519 AAAA…"``, also with git's
  ``key::`` prefix), whose private half ssh-agent holds; or None for the agent's first key.
- `verify(data, signature, principal, namespace, allowed_signers)`: a `Verdict`, never an
  exception for a bad signature: ok, the principal, the key's fingerprint and, on failure,
  one line saying why.
- `find_principals(...)`: the principals whose listed key made a valid signature.

ssh-keygen alone decides whether a signature is good. On a failure it says little ("Could not
verify signature."), so the verdict's reason comes from reading the signature itself
(`armor`), from `-Y check-novalidate` (does the signature match the data at all?) and
`-Y find-principals` (whose key is it?), and from ssh-keygen's notes on the signers file
(expired keys, lines it skipped).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ..dataclass import dataclass
from .armor import MalformedSignature, SignatureInfo, parse_public_key, read_signature
from .errors import SignersError, SigningKeyError, StatementError, ToolFailed, TrustError
from .tool import (
    CHECK_TIMEOUT,
    SIGN_TIMEOUT,
    Completed,
    agent_keys,
    private_dir,
    program,
    run_tool,
    write_private,
)

Problem = Literal["unsigned", "malformed", "wrong-namespace", "mismatch", "not-listed",
                  "expired", "not-yet-valid", "namespace-not-allowed"]
KeySpec = str | os.PathLike[str] | None

# What a failed check means to whoever asked: every signed statement (an approval, a head
# seal) reads ssh-keygen's verdicts the same way.
SignatureProblem = Literal["unsigned", "bad-signature", "not-listed", "key-not-valid"]
SIGNATURE_PROBLEM: dict[str, SignatureProblem] = {
    "unsigned": "unsigned", "malformed": "bad-signature", "wrong-namespace": "bad-signature",
    "mismatch": "bad-signature", "not-listed": "not-listed",
    "namespace-not-allowed": "not-listed", "expired": "key-not-valid",
    "not-yet-valid": "key-not-valid"}

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+-]*\Z")
# ssh-keygen's notes on lines of the signers file: "FILE:LINE: message".
_NOTE = re.compile(r"^(?P<where>.+:\d+): (?P<message>.+)$")
_MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one signature for one principal.

    `problem` is None when `ok`, else a code; `reason` is one line for people ("" when ok).
    `fingerprint` and `key_type` describe the key that made the signature, when readable.
    """

    ok: bool
    principal: str
    fingerprint: str | None
    key_type: str | None
    problem: Problem | None
    reason: str


def sign(data: bytes, namespace: str, key: KeySpec = None, *,
         timeout: float = SIGN_TIMEOUT) -> str:
    """Sign `data` for `namespace` with `key`; the armored signature text.

    Raises `SigningKeyError` when the key cannot be used (say why and what to do),
    `SshKeygenMissing`, or `ToolFailed` (a timeout).
    """
    _check_namespace(namespace)
    keygen = program()
    with private_dir() as scratch:
        keyfile, label, private = _key_file(key, scratch, timeout)
        message = write_private(scratch / "statement", data)
        done = run_tool([keygen, "-Y", "sign", "-n", namespace, "-f", keyfile, str(message)],
                        timeout=timeout, what=f"signing with {label}")
        signature = scratch / "statement.sig"
        if done.returncode != 0 or not signature.is_file():
            raise SigningKeyError(_sign_failure(label, private, done.stderr))
        text = signature.read_text(encoding="ascii")
    try:
        read_signature(text)
    except MalformedSignature as error:  # ssh-keygen wrote something we cannot read back
        raise TrustError(f"signing with {label}: ssh-keygen wrote an unreadable signature "
                         f"({error})") from None
    return text


def verify(data: bytes, signature: str | None, principal: str, namespace: str,
           allowed_signers: str | os.PathLike[str], *, at: datetime | None = None,
           timeout: float = CHECK_TIMEOUT) -> Verdict:
    """Check that `signature` is `principal`'s over `data` in `namespace`.

    `allowed_signers` is an OpenSSH allowed-signers file; `at` is the moment at which the
    key's `valid-after`/`valid-before` must hold (default: now). Raises only when the check
    cannot be made (`SignersError`, `SshKeygenMissing`, `ToolFailed`).
    """
    _check_namespace(namespace)
    _check_principal(principal)
    signers = _signers_file(allowed_signers)
    info, early = _read(signature, principal, namespace)
    if early is not None:
        return early
    assert info is not None and signature is not None
    with private_dir() as scratch:
        sigfile = write_private(scratch / "statement.sig", signature)
        done = _good(data, principal, namespace, signers, sigfile, at, timeout)
        if done.returncode == 0:
            return Verdict(True, principal, info.fingerprint, info.key_type, None, "")
        if 'Invalid option "verify-time' in done.stderr:
            raise ToolFailed("this ssh-keygen is too old to check a key's validity at a given "
                             "time; signatures need OpenSSH 8.8 or later")
        return _diagnose(data, info, principal, namespace, signers, sigfile, done.stderr,
                         at, timeout)


def find_principals(data: bytes, signature: str | None, namespace: str,
                    allowed_signers: str | os.PathLike[str], *, at: datetime | None = None,
                    timeout: float = CHECK_TIMEOUT) -> list[str]:
    """The principals whose listed key made a valid signature over `data` (may be empty).

    ssh-keygen's `find-principals` only looks the key up; each name it finds is confirmed
    by a full `verify`, so a name is returned only if the signature counts for it.
    """
    _check_namespace(namespace)
    signers = _signers_file(allowed_signers)
    info, early = _read(signature, "", namespace)
    if early is not None or signature is None:
        return []
    with private_dir() as scratch:
        sigfile = write_private(scratch / "statement.sig", signature)
        names = _listed_for(signers, sigfile, at, timeout)
        # The lookup ignores the data; a plain ssh-keygen verify per name checks it.
        return [name for name in names
                if _good(data, name, namespace, signers, sigfile, at, timeout).returncode == 0]


def _read(signature: str | None, principal: str,
          namespace: str) -> tuple[SignatureInfo | None, Verdict | None]:
    """The signature's own fields, or the verdict that ends the check before ssh-keygen."""
    if signature is None or not signature.strip():
        return None, Verdict(False, principal, None, None, "unsigned", "there is no signature")
    try:
        info = read_signature(signature)
    except MalformedSignature as error:
        return None, Verdict(False, principal, None, None, "malformed",
                             f"the signature is malformed: {error}")
    if info.namespace != namespace:
        return info, Verdict(False, principal, info.fingerprint, info.key_type,
                             "wrong-namespace", f"the signature is for namespace "
                             f"{info.namespace!r}, not {namespace!r}")
    return info, None


def _good(data: bytes, principal: str, namespace: str, signers: Path, sigfile: Path,
          at: datetime | None, timeout: float) -> Completed:
    """One `ssh-keygen -Y verify`: exit 0 and "Good …" on stdout when the signature counts."""
    argv = [program(), "-Y", "verify", "-f", str(signers), "-I", principal, "-n", namespace,
            "-s", str(sigfile), *_time_option(at)]
    done = run_tool(argv, data=data, timeout=timeout, what="verifying a signature")
    if done.returncode == 0 and not done.stdout.startswith("Good"):
        return Completed(1, done.stdout, done.stderr)
    return done


def _diagnose(data: bytes, info: SignatureInfo, principal: str, namespace: str, signers: Path,
              sigfile: Path, stderr: str, at: datetime | None, timeout: float) -> Verdict:
    """Why `verify` failed, in one line."""
    def refuse(problem: Problem, reason: str) -> Verdict:
        return Verdict(False, principal, info.fingerprint, info.key_type, problem, reason)

    if not _matches(data, namespace, sigfile, timeout):
        return refuse("mismatch", "the signature does not match the statement: it was made "
                      "over other data, or the statement was changed after signing")
    key = f"{info.key_type} key {info.fingerprint}"
    notes = [m for line in stderr.splitlines() if (m := _NOTE.match(line.strip()))]
    for note in notes:
        text, where = note["message"], note["where"]
        if "key has expired" in text:
            return refuse("expired", f"{principal}'s {key} has expired: "
                          f"{_window(text, 'valid-before')} ({where})")
        if "not yet valid" in text:
            return refuse("not-yet-valid", f"{principal}'s {key} is not yet valid: "
                          f"{_window(text, 'valid-after')} ({where})")
        if "not permitted for use in signature namespace" in text:
            return refuse("namespace-not-allowed", f"{principal}'s {key} may not sign in "
                          f"namespace {namespace!r} (its namespaces option, {where})")
    owners = [name for name in _listed_for(signers, sigfile, at, timeout) if name != principal]
    whose = f"{', '.join(owners)}'s {key}" if owners else f"the {key}"
    skipped = [f"{n['where']}: {n['message']}" for n in notes]
    tail = f" (ssh-keygen skipped {'; '.join(skipped)})" if skipped else ""
    return refuse("not-listed", f"the signature was made with {whose}, which is not listed "
                  f"for {principal} in {signers}{tail}")


def _window(note: str, bound: str) -> str:
    """'valid-before 2020-01-01T00:00:00, checked at …' from ssh-keygen's note."""
    found = re.search(rf"verify time (\S+) [<>] {bound} (\S+)", note)
    return f"{bound} {found[2]}, checked at {found[1]}" if found else note


def _matches(data: bytes, namespace: str, sigfile: Path, timeout: float) -> bool:
    """Does the signature match `data` and `namespace` at all, whoever's key made it?"""
    done = run_tool([program(), "-Y", "check-novalidate", "-n", namespace, "-s", str(sigfile)],
                    data=data, timeout=timeout, what="checking a signature")
    return done.returncode == 0


def _listed_for(signers: Path, sigfile: Path, at: datetime | None,
                timeout: float) -> list[str]:
    """The principals the signers file lists for the signature's key (unverified)."""
    done = run_tool([program(), "-Y", "find-principals", "-f", str(signers), "-s",
                     str(sigfile), *_time_option(at)], timeout=timeout,
                    what="looking up a signature's key")
    if done.returncode != 0:
        return []
    return list(dict.fromkeys(line.strip() for line in done.stdout.splitlines()
                              if line.strip()))


def _time_option(at: datetime | None) -> list[str]:
    if at is None:
        return []
    if at.tzinfo is None:
        raise StatementError("a verification time must carry its time zone")
    return ["-O", "verify-time=" + at.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")]


def _key_file(key: KeySpec, scratch: Path, timeout: float) -> tuple[str, str, str]:
    """The path to give `ssh-keygen -f`, how to name the key, and its private key file."""
    if key is None:
        keys = agent_keys(timeout)
        if not keys:
            raise SigningKeyError("no key was given and ssh-agent holds no keys: add one "
                                  "with ssh-add KEY, or name a key file")
        path = write_private(scratch / "agent.pub", keys[0].line() + "\n")
        return str(path), f"the agent's key {keys[0].fingerprint}", "KEY"
    text = os.fspath(key)
    literal = text.removeprefix("key::")
    public = parse_public_key(literal) if "\n" not in literal.strip() else None
    if public is not None and (text.startswith("key::") or not _exists(text)):
        _require_agent(public.blob, f"key {public.fingerprint}", timeout)
        path = write_private(scratch / "key.pub", public.line() + "\n")
        return str(path), f"key {public.fingerprint}", "KEY"
    path = Path(text)
    if not path.is_file():
        raise SigningKeyError(f"{text}: no such key file" if not path.exists()
                              else f"{text}: not a key file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(_MAX_KEY_FILE)
    except OSError as error:
        raise SigningKeyError(f"{text}: cannot read the key: {error.strerror}") from None
    if head.lstrip().startswith(b"-----BEGIN"):
        return str(path), text, text
    public = parse_public_key(head.decode("utf-8", "replace"))
    if public is None:
        raise SigningKeyError(f"{text} is not an SSH key (neither a private key nor a public "
                              "key line in OpenSSH format)")
    # ssh-keygen signs with the agent's copy, else with the private file beside a .pub.
    beside = path.with_suffix("") if path.suffix == ".pub" else None
    if beside is None or not beside.is_file():
        _require_agent(public.blob, f"{text} (a public key)", timeout)
        return str(path), text, "KEY"
    return str(path), text, str(beside)


def _exists(text: str) -> bool:
    """Whether a path exists; a literal key too long to be a path is not one."""
    try:
        return Path(text).exists()
    except OSError:
        return False


def _require_agent(blob: bytes, label: str, timeout: float) -> None:
    """Refuse, with what to do, unless ssh-agent holds the private half of `blob`."""
    try:
        held = agent_keys(timeout)
    except SigningKeyError as error:
        raise SigningKeyError(f"{label}: its private half must be in ssh-agent, but {error}"
                              ) from None
    if not any(k.blob == blob for k in held):
        raise SigningKeyError(f"{label}: ssh-agent does not hold its private half (add it "
                              "with ssh-add PRIVATE_KEY_FILE)")


def _sign_failure(label: str, private: str, stderr: str) -> str:
    """One line for a failed `ssh-keygen -Y sign`."""
    if "passphrase" in stderr:
        return (f"{label} is protected by a passphrase and no ssh-agent holds it: add it "
                f"to your agent (ssh-add {private}) and try again; runbook never asks for "
                "passphrases")
    if "too open" in stderr:
        return f"ssh-keygen refuses {label}: its permissions are too open (chmod 600 {label})"
    # The file exists (checked before): "Couldn't load public key" means it does not parse.
    if any(m in stderr for m in ("invalid format", "No private key found",
                                 "Couldn't load public key")):
        return f"{label} is not an SSH private key ssh-keygen can read"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f"signing with {label} failed: {lines[-1] if lines else 'ssh-keygen failed'}"


def _signers_file(path: str | os.PathLike[str]) -> Path:
    """The allowed-signers file, readable; `SignersError` saying what is wrong otherwise."""
    signers = Path(path)
    if not signers.exists():
        raise SignersError(f"the signers file {signers} does not exist")
    if not signers.is_file():
        raise SignersError(f"the signers file {signers} is not a file")
    try:
        with open(signers, "rb"):
            pass
    except OSError as error:
        raise SignersError(f"the signers file {signers} cannot be read: {error.strerror}"
                           ) from None
    return signers


def _check_namespace(namespace: str) -> None:
    if not _NAMESPACE.match(namespace):
        raise StatementError(f"{namespace!r} is not a signature namespace")


def _check_principal(principal: str) -> None:
    if not principal or "\0" in principal:
        raise StatementError("a signature is checked against a name, and none was given")
