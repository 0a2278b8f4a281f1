"""Read OpenSSH signatures and public keys without trusting them.

An SSH signature (`ssh-keygen -Y sign`, format in OpenSSH's PROTOCOL.sshsig) is armored text
around a blob: the magic ``SSHSIG``, a version, the signer's public key, the namespace, a
reserved field, the hash algorithm and the signature proper. Reading the blob here lets a
verdict name the key's fingerprint and say "signed for namespace X" in plain words;
whether the signature is *valid* is only ever decided by `ssh-keygen` (see `sshsig`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

from ..dataclass import dataclass

BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
# A real signature is under 2 KiB (an RSA-16384 one under 5 KiB); anything much larger is
# not one, and reading it would only cost memory.
MAX_SIGNATURE_CHARS = 64 * 1024
KEY_TYPE = re.compile(r"(ssh|ecdsa|sk|rsa)-[A-Za-z0-9@.+_-]+\Z")
# Wire fields of each plain key type, its name included (RFC 4253, 5656, 8709; PROTOCOL.u2f);
# certificates and types not named here are left to ssh-keygen.
_FIELDS = {"ssh-ed25519": 2, "ssh-rsa": 3, "ssh-dss": 5, "ecdsa-sha2-nistp256": 3,
           "ecdsa-sha2-nistp384": 3, "ecdsa-sha2-nistp521": 3, "sk-ssh-ed25519@openssh.com": 3,
           "sk-ecdsa-sha2-nistp256@openssh.com": 4}


class MalformedSignature(ValueError):
    """The text is not an armored SSH signature; the message says what is wrong."""


@dataclass(frozen=True)
class SignatureInfo:
    """What a signature says about itself (unverified): key, namespace, hash algorithm."""

    key_type: str
    fingerprint: str
    namespace: str
    hash_algorithm: str
    public_key: str  # "TYPE BASE64", as in an allowed-signers file


def fingerprint(blob: bytes) -> str:
    """The SHA256 fingerprint of a public key blob, as `ssh-keygen -l` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _strings(blob: bytes, start: int, count: int) -> tuple[list[bytes], int]:
    """`count` SSH wire strings (uint32 length + bytes) from `blob` at `start`."""
    out, at = [], start
    for _ in range(count):
        if at + 4 > len(blob):
            raise MalformedSignature("the signature is cut short")
        (size,) = struct.unpack(">I", blob[at:at + 4])
        at += 4
        if at + size > len(blob):
            raise MalformedSignature("the signature is cut short")
        out.append(blob[at:at + size])
        at += size
    return out, at


def read_signature(text: str) -> SignatureInfo:
    """Parse armored signature text; raises `MalformedSignature` saying what is wrong."""
    if len(text) > MAX_SIGNATURE_CHARS:
        raise MalformedSignature(f"the signature is {len(text)} characters long, too long "
                                 "to be an SSH signature")
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or lines[0] != BEGIN:
        raise MalformedSignature(f"the signature does not start with {BEGIN}")
    if lines[-1] != END or len(lines) < 3:
        raise MalformedSignature(f"the signature does not end with {END}")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSignature("the signature's body is not base64") from None
    if not blob.startswith(b"SSHSIG") or len(blob) < 10:
        raise MalformedSignature("the signature's body is not an SSHSIG blob")
    (version,) = struct.unpack(">I", blob[6:10])
    if version != 1:
        raise MalformedSignature(f"SSH signature version {version} is not supported")
    (key, namespace, _reserved, hash_alg, sig), end = _strings(blob, 10, 5)
    if end != len(blob):
        raise MalformedSignature("the signature has trailing bytes")
    (key_type, *_), _ = _strings(key, 0, 1)
    try:
        key_name, ns_name, hash_name = (key_type.decode("ascii"), namespace.decode("utf-8"),
                                        hash_alg.decode("ascii"))
    except UnicodeDecodeError:
        raise MalformedSignature("the signature's fields are not text") from None
    if not sig:
        raise MalformedSignature("the signature is empty")
    return SignatureInfo(key_name, fingerprint(key), ns_name, hash_name,
                         f"{key_name} {base64.b64encode(key).decode()}")


@dataclass(frozen=True)
class PublicKey:
    """One OpenSSH public key line: type, blob and comment."""

    key_type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """SHA256 fingerprint, as ssh-keygen prints it."""
        return fingerprint(self.blob)

    def line(self) -> str:
        """The key as one line for a `.pub` file (comment dropped)."""
        return f"{self.key_type} {base64.b64encode(self.blob).decode()}"


def parse_public_key(text: str) -> PublicKey | None:
    """A public key from one line "TYPE BASE64 [COMMENT]", or None if it is not one.

    The type named in front must match the one inside the blob, as ssh-keygen requires.
    """
    parts = text.strip().split(None, 2)
    if len(parts) < 2 or not KEY_TYPE.match(parts[0]):
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (inner, *_), _ = _strings(blob, 0, 1)
        if inner != parts[0].encode():
            return None
        # A plain key is its type and a fixed number of fields, nothing more: a key cut
        # short, even at a field boundary, is not one.
        count = _FIELDS.get(parts[0])
        if count is not None and _strings(blob, 0, count)[1] != len(blob):
            return None
    except (binascii.Error, ValueError):
        return None
    return PublicKey(parts[0], blob, parts[2] if len(parts) > 2 else "")

