"""Bank account numbers at rest: AES-256-GCM under a key ring, a keyed hash for look-ups,
and the last four characters for display.

A key ring is an ordered set of named 256-bit keys (`PAYCORE_ACCOUNT_KEYS=
"k2:<base64>,k1:<base64>"`, newest first). The newest encrypts; every key decrypts, so a
new key can be put in front and the register re-encrypted (`beneficiaries.rekey_accounts`)
before the old one is dropped. Each named key yields two keys by HKDF, one to encrypt and
one for the look-up HMAC, so the hash stored beside a ciphertext reveals nothing the
cipher protects. A ciphertext is bound (AES-GCM associated data) to the register row it
belongs to: copied onto another row it does not decrypt.

The ring is installed once per process by the composition root (`use_account_keys`);
gateways never reads the environment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateways.errors import PaymentError

__all__ = ["AccountKeys", "AccountKeysMissing", "current_account_keys", "mask",
           "new_key_spec", "use_account_keys"]

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class AccountKeysMissing(PaymentError):
    """No key ring (or not the key a stored number was encrypted under)."""

    code = "account-keys-missing"


@dataclass(frozen=True)
class _Key:
    key_id: str
    cipher: AESGCM
    lookup: bytes


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def mask(number: str) -> str:
    """What a person sees of an account number: its last four characters."""
    return "***" + number[-4:] if len(number) > 4 else "***"


class AccountKeys:
    """The key ring; the first key is the newest (it encrypts)."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise AccountKeysMissing("an account key ring needs at least one key")
        seen: set[str] = set()
        ring: list[_Key] = []
        for key_id, material in keys:
            if not _KEY_ID.match(key_id) or key_id in seen:
                raise AccountKeysMissing(f"account key id {key_id!r} is malformed or repeated")
            if len(material) != 32:
                raise AccountKeysMissing(f"account key {key_id!r} must be 32 bytes (base64 of "
                                         f"256 random bits), not {len(material)}")
            seen.add(key_id)
            ring.append(_Key(key_id, AESGCM(_derive(material, b"paycore account number v1")),
                             _derive(material, b"paycore account lookup v1")))
        self._ring = ring

    @classmethod
    def from_spec(cls, spec: str) -> AccountKeys:
        """`"k2:<base64>,k1:<base64>"`, newest first."""
        keys: list[tuple[str, bytes]] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            key_id, sep, encoded = part.partition(":")
            if not sep:
                raise AccountKeysMissing("PAYCORE_ACCOUNT_KEYS reads id:base64key[,id:base64key...]")
            try:
                keys.append((key_id, base64.b64decode(encoded, validate=True)))
            except (binascii.Error, ValueError):
                raise AccountKeysMissing(f"account key {key_id!r} is not base64") from None
        return cls(keys)

    @property
    def current_id(self) -> str:
        return self._ring[0].key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(k.key_id for k in self._ring)

    def encrypt(self, number: str, *, bound_to: str) -> tuple[str, str]:
        """(key id, base64 of nonce + ciphertext + tag) of `number`, for row `bound_to`."""
        key = self._ring[0]
        nonce = os.urandom(12)
        sealed = key.cipher.encrypt(nonce, number.encode(), bound_to.encode())
        return key.key_id, base64.b64encode(nonce + sealed).decode()

    def decrypt(self, key_id: str, token: str, *, bound_to: str) -> str:
        key = next((k for k in self._ring if k.key_id == key_id), None)
        if key is None:
            raise AccountKeysMissing(f"account key {key_id!r} is not in the key ring "
                                     f"({', '.join(self.key_ids)}); it is needed to read a "
                                     "stored account number")
        raw = base64.b64decode(token)
        try:
            return key.cipher.decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
        except InvalidTag:
            raise AccountKeysMissing(f"a stored account number of {bound_to} does not "
                                     f"decrypt under key {key_id!r} (tampered or moved)") from None

    def lookup_hash(self, number: str) -> str:
        """The newest key's HMAC-SHA256 of `number` (stored for look-ups)."""
        return self.lookup_hashes(number)[0]

    def lookup_hashes(self, number: str) -> list[str]:
        """`number`'s HMAC under every key, newest first: rows not yet re-keyed match too."""
        return [hmac.new(k.lookup, number.encode(), hashlib.sha256).hexdigest()
                for k in self._ring]


_installed: list[AccountKeys] = []


def use_account_keys(keys: AccountKeys | None) -> None:
    """Install the process's key ring (None removes it)."""
    _installed.clear()
    if keys is not None:
        _installed.append(keys)


def current_account_keys() -> AccountKeys:
    if not _installed:
        raise AccountKeysMissing("no account key ring: set PAYCORE_ACCOUNT_KEYS to "
                                 "id:base64key (32 random bytes; `paycore beneficiaries "
                                 "new-key` prints one)")
    return _installed[0]


def new_key_spec(key_id: str) -> str:
    """A fresh `id:base64` entry for PAYCORE_ACCOUNT_KEYS."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"
