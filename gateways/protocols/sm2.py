"""SM2 signatures with SM3 (GB/T 32918.2, GM/T 0003), with the curve from `gmssl`.

The arithmetic is done here on Python integers rather than through gmssl's hex-string
`CryptSM2` (about twenty times slower): Jacobian coordinates and a 64 x 16 comb table
for the generator and for each recently used public key, so a scalar product is at most
64 additions.  Like gmssl's, it is not constant-time: fine for a sandbox and tests;
production signing belongs in an HSM or a vetted native library.  SM3 comes from OpenSSL
through `hashlib` where it is built in, else from gmssl.  gmssl remains the source of the
curve parameters and the independent oracle in the tests (signatures cross-verify both
ways, plus the GM/T 0003.5 known answers).

What matters for a payment system:

- the per-signature nonce `k` comes from `secrets` (gmssl's default, `random.choice`,
  is predictable);
- a signature's `r` and `s` are checked to lie in [1, n-1] before verifying, as the
  standard requires, `t = r + s` must not be 0 mod n, and a sum at infinity fails
  verification instead of escaping as an exception;
- public keys are checked to lie on the curve before use.

Signatures travel as DER `SEQUENCE { r INTEGER, s INTEGER }` (GM/T 0009), encoded with
the `cryptography` package's strict DER helpers.  The signer identity is the standard
default user ID "1234567812345678" (as gmssl's `sign_with_sm3`).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass

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
_GX = int(_TABLE["g"][:64], 16)
_GY = int(_TABLE["g"][64:], 16)
_N = CURVE_ORDER
_DEFAULT_ID = b"1234567812345678"

try:
    hashlib.new("sm3", b"")
    _OPENSSL_SM3 = True
except ValueError:  # an OpenSSL built without SM3
    _OPENSSL_SM3 = False


def _sm3(data: bytes) -> bytes:
    if _OPENSSL_SM3:
        return hashlib.new("sm3", data).digest()
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def sm3_hex(data: bytes) -> str:
    return _sm3(data).hex()


# ---------------------------------------------------------------------------- curve arithmetic
# Points in Jacobian coordinates (X, Y, Z) stand for (X/Z^2, Y/Z^3); Z == 0 is infinity.

_Jacobian = tuple[int, int, int]
_INFINITY: _Jacobian = (1, 1, 0)


def _double(point: _Jacobian) -> _Jacobian:
    x1, y1, z1 = point
    if z1 == 0 or y1 == 0:
        return _INFINITY
    p = _P
    # a = -3 (mod p) on the SM2 curve: the "dbl-2001-b" formulas.
    delta = z1 * z1 % p
    gamma = y1 * y1 % p
    beta = x1 * gamma % p
    alpha = 3 * (x1 - delta) * (x1 + delta) % p
    x3 = (alpha * alpha - 8 * beta) % p
    z3 = ((y1 + z1) * (y1 + z1) - gamma - delta) % p
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % p
    return (x3, y3, z3)


def _add(first: _Jacobian, second: _Jacobian) -> _Jacobian:
    x1, y1, z1 = first
    x2, y2, z2 = second
    if z1 == 0:
        return second
    if z2 == 0:
        return first
    p = _P
    z1z1 = z1 * z1 % p
    z2z2 = z2 * z2 % p
    u1 = x1 * z2z2 % p
    u2 = x2 * z1z1 % p
    s1 = y1 * z2 * z2z2 % p
    s2 = y2 * z1 * z1z1 % p
    if u1 == u2:
        return _double(first) if s1 == s2 else _INFINITY
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - s1 * hhh) % p
    z3 = h * z1 * z2 % p
    return (x3, y3, z3)


def _affine(point: _Jacobian) -> tuple[int, int] | None:
    x, y, z = point
    if z == 0:
        return None
    inverse = pow(z, -1, _P)
    inverse2 = inverse * inverse % _P
    return (x * inverse2 % _P, y * inverse2 * inverse % _P)


def _comb_table(x: int, y: int) -> list[list[_Jacobian]]:
    """Rows i = 0..63 of j * 16^i * (x, y), j = 0..15: then k * point is at most 64
    additions and no doublings."""
    rows: list[list[_Jacobian]] = []
    row_start: _Jacobian = (x, y, 1)
    for _ in range(64):
        row = [_INFINITY, row_start]
        for _ in range(14):
            row.append(_add(row[-1], row_start))
        rows.append(row)
        row_start = _add(row[15], row_start)  # 16 * row_start
    return rows


def _comb_multiply(k: int, rows: list[list[_Jacobian]]) -> _Jacobian:
    result = _INFINITY
    for i in range(64):
        nibble = (k >> (4 * i)) & 0xF
        if nibble:
            result = _add(result, rows[i][nibble])
    return result


@functools.lru_cache(maxsize=1)
def _base_rows() -> list[list[_Jacobian]]:
    return _comb_table(_GX, _GY)


@functools.lru_cache(maxsize=32)
def _key_rows(x: int, y: int) -> list[list[_Jacobian]]:
    # A bank and a merchant verify against the same few keys again and again.
    return _comb_table(x, y)


def _multiply_base(k: int) -> _Jacobian:
    return _comb_multiply(k, _base_rows())


def _z(public: Sm2PublicKey) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    parts = [len(_DEFAULT_ID * 8).to_bytes(2, "big"), _DEFAULT_ID]
    parts += [v.to_bytes(32, "big") for v in (_A, _B, _GX, _GY, public.x, public.y)]
    return _sm3(b"".join(parts))


def _digest(public: Sm2PublicKey, data: bytes) -> int:
    return int.from_bytes(_sm3(_z(public) + data), "big")


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
        point = _affine(_multiply_base(self.d))
        assert point is not None  # d in [1, n-2]: never the point at infinity
        return Sm2PublicKey(*point)


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
    e = _digest(public, data)
    d = key.d
    inverse = pow(1 + d, -1, _N)
    while True:
        nonce = k if k is not None else secrets.randbelow(_N - 1) + 1
        point = _affine(_multiply_base(nonce))
        assert point is not None  # 1 <= nonce < n
        r = (e + point[0]) % _N
        s = inverse * (nonce - r * d) % _N
        if r != 0 and r + nonce != _N and s != 0:
            return encode_dss_signature(r, s)
        if k is not None:
            raise ValueError("the given nonce yields a degenerate SM2 signature")


def sm2_verify(key: Sm2PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    if not (1 <= r < _N and 1 <= s < _N):
        return False
    t = (r + s) % _N
    if t == 0:
        return False
    point = _affine(_add(_multiply_base(s), _comb_multiply(t, _key_rows(key.x, key.y))))
    if point is None:
        return False
    return (_digest(key, data) + point[0]) % _N == r
