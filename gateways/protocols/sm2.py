"""SM2 signatures with SM3 (GB/T 32918.2, GM/T 0003), on top of `gmssl`'s curve arithmetic.

gmssl does the field and point arithmetic; this module closes the gaps that matter for a
payment system:

- the per-signature nonce `k` comes from `secrets`, not from gmssl's default
  (`random.choice`, which is predictable);
- a signature's `r` and `s` are checked to lie in [1, n-1] before verifying, as the
  standard requires, and a degenerate point never escapes as a `TypeError`;
- public keys are checked to lie on the curve before use;
- `CryptSM2.__init__` strips a leading "04" with `str.lstrip`, which also eats any
  further leading '0'/'4' digits of x; keys are handed over already unprefixed and set
  after construction so that never happens.

Signatures travel as DER `SEQUENCE { r INTEGER, s INTEGER }` (GM/T 0009), encoded with
the `cryptography` package's strict DER helpers.  The signer identity is the standard
default user ID "1234567812345678", which is what gmssl's `sign_with_sm3` uses.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from gmssl import func, sm2, sm3

__all__ = [
    "CURVE_ORDER",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "sm2_sign",
    "sm2_verify",
    "sm3_hex",
]

_TABLE: dict[str, str] = sm2.default_ecc_table
CURVE_ORDER = int(_TABLE["n"], 16)
_P = int(_TABLE["p"], 16)
_A = int(_TABLE["a"], 16)
_B = int(_TABLE["b"], 16)


def sm3_hex(data: bytes) -> str:
    digest: str = sm3.sm3_hash(func.bytes_to_list(data))
    return digest


def _engine(private_hex: str, public_hex: str) -> Any:
    engine = sm2.CryptSM2(private_key=private_hex, public_key="00" * 64)
    engine.public_key = public_hex
    return engine


@dataclass(frozen=True)
class Sm2PublicKey:
    x: int
    y: int

    def __post_init__(self) -> None:
        if not (0 <= self.x < _P and 0 <= self.y < _P):
            raise ValueError("SM2 public key coordinates are out of range")
        if (self.y * self.y - (self.x**3 + _A * self.x + _B)) % _P != 0:
            raise ValueError("SM2 public key is not a point on the SM2 curve")

    @classmethod
    def from_hex(cls, text: str) -> Sm2PublicKey:
        """Accepts the uncompressed point `04||X||Y` or the bare `X||Y` (hex)."""
        raw = text.strip()
        if len(raw) == 130 and raw[:2] == "04":
            raw = raw[2:]
        if len(raw) != 128:
            raise ValueError("SM2 public key must be 64 bytes X||Y (or 65 with a 04 prefix)")
        try:
            return cls(int(raw[:64], 16), int(raw[64:], 16))
        except ValueError:
            raise ValueError("SM2 public key is not hexadecimal") from None

    @property
    def hex(self) -> str:
        """Bare `X||Y`, 128 hex digits."""
        return f"{self.x:064x}{self.y:064x}"

    @property
    def uncompressed_hex(self) -> str:
        return "04" + self.hex


@dataclass(frozen=True, repr=False)
class Sm2PrivateKey:
    d: int

    def __post_init__(self) -> None:
        # d = n-1 is excluded by the standard: signing needs (1+d)^-1 mod n.
        if not 1 <= self.d <= CURVE_ORDER - 2:
            raise ValueError("SM2 private key must lie in [1, n-2]")

    def __repr__(self) -> str:
        return "Sm2PrivateKey(<redacted>)"

    @classmethod
    def from_hex(cls, text: str) -> Sm2PrivateKey:
        try:
            return cls(int(text.strip(), 16))
        except ValueError as exc:
            raise ValueError(f"invalid SM2 private key: {exc}") from None

    @property
    def hex(self) -> str:
        return f"{self.d:064x}"

    @property
    def public_key(self) -> Sm2PublicKey:
        engine = _engine(self.hex, "00" * 64)
        point: str = engine._kg(self.d, _TABLE["g"])
        return Sm2PublicKey(int(point[:64], 16), int(point[64:], 16))


def sm2_sign(
    key: Sm2PrivateKey,
    data: bytes,
    *,
    public_key: Sm2PublicKey | None = None,
    k: int | None = None,
) -> bytes:
    """DER-encoded SM2 signature of SM3(Z_A || data).

    `k` is only for known-answer tests; production signing always draws a fresh nonce.
    """
    public = public_key or key.public_key
    engine = _engine(key.hex, public.hex)
    while True:
        nonce = k if k is not None else secrets.randbelow(CURVE_ORDER - 1) + 1
        signature: str | None = engine.sign_with_sm3(data, f"{nonce:064x}")
        if signature is not None:
            return encode_dss_signature(int(signature[:64], 16), int(signature[64:], 16))
        if k is not None:
            raise ValueError("the given nonce yields a degenerate SM2 signature")


def sm2_verify(key: Sm2PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    if not (1 <= r < CURVE_ORDER and 1 <= s < CURVE_ORDER):
        return False
    engine = _engine("00", key.hex)
    try:
        return bool(engine.verify_with_sm3(f"{r:064x}{s:064x}", data))
    except (TypeError, ValueError):
        # s*G + t*P at infinity: gmssl returns None for the point and then indexes it.
        return False
