"""Ed25519 keys that sign checkpoints (`cryptography`).

A key is named by its key id, the first 16 bytes of SHA-256 over its raw public key, so a
checkpoint names the key that signed it and a verifier picks that key from the public
keys it trusts: after a rotation the old public key stays trusted, and the checkpoints it
signed stay verifiable. The private key lives in a file outside the database; nothing
here reads files, the caller hands over PEM bytes.

`cryptography` is imported by the functions that use a key, not with this module: every
`import ledger` would otherwise load it (a `paycore balance` never signs anything).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.errors import CheckpointError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


def key_id(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"the checkpoint signing key is not a readable PEM private "
                                  f"key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError("the checkpoint signing key must be an Ed25519 key")
        return cls(key)

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    def private_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()


def public_key_from_pem(pem: bytes, where: str = "public key") -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{where} is not a readable PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{where} is not an Ed25519 key")
    return key


def trusted_keys(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """The public keys a verifier trusts, by key id."""
    return {key_id(k): k for k in keys}


def check_signature(trusted: Mapping[str, Ed25519PublicKey], signer: str, message: bytes,
                    signature: str, what: str) -> None:
    """Raise CheckpointError unless `signature` over `message` is by trusted key `signer`."""
    from cryptography.exceptions import InvalidSignature

    public = trusted.get(signer)
    if public is None:
        known = ", ".join(sorted(trusted)) or "none"
        raise CheckpointError(f"{what} is signed by key {signer}, which is not among the "
                              f"trusted public keys ({known})")
    try:
        raw = base64.b64decode(signature, validate=True)
        public.verify(raw, message)
    except (InvalidSignature, binascii.Error, ValueError):
        raise CheckpointError(f"{what}: the signature does not verify with key {signer} — "
                              "the file was altered after it was signed, or not signed by "
                              "that key") from None


__all__ = ["SigningKey", "check_signature", "key_id", "public_key_from_pem", "trusted_keys"]
