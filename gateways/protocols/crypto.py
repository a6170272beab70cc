"""Hashing, HMAC and RSA primitives shared by the bank protocols.

Every comparison of a secret-derived value goes through `constant_time_equal`, so a
forger cannot learn a correct MAC byte by byte from response timings.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "constant_time_equal",
    "hmac_sha256_hex",
    "rsa_sha256_sign",
    "rsa_sha256_verify",
    "sha256_hex",
]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_sha256_hex(secret: bytes, data: bytes) -> str:
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    # compare_digest refuses non-ASCII str, and a header may carry anything.
    left = a.encode("utf-8") if isinstance(a, str) else a
    right = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def rsa_sha256_sign(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """SHA256withRSA (RSASSA-PKCS1-v1_5), the scheme Java's `Signature` calls by that name."""
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def rsa_sha256_verify(public_key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
