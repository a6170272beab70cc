"""The sandbox banks' merchant credentials as a file, for a paycore process that did not
start the banks (`paycore serve`, a janitor): what each bank's merchant holds (keys,
certificates, secrets, merchant id, base URL) written by the process that runs the banks
(`python -m gateways.sandbox banks --directory FILE`), read back by the API's
`PAYCORE_BANKS` factory:

    PAYCORE_BANKS=gateways.sandbox.directory:banks
    PAYCORE_SANDBOX_DIRECTORY=/path/to/banks.json
    PAYCORE_NOTIFY_BASE_URL=http://127.0.0.1:8000/v1/notifications   # this API's own URL

Real key material travels as PEM / hex, nothing stubbed. The file holds private keys: it
is written owner-only (0600), as a deployment keeps its merchant keys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateways.adapters._http import Duration
from gateways.protocols import RsaIdentity, Sm2PrivateKey
from gateways.protocols.sm2 import Sm2PublicKey
from gateways.routing import BankDirectory
from gateways.sandbox.base import SandboxBank

__all__ = ["DIRECTORY_ENV", "NOTIFY_ENV", "banks", "directory_from", "read_directory",
           "write_directory"]

DIRECTORY_ENV = "PAYCORE_SANDBOX_DIRECTORY"
NOTIFY_ENV = "PAYCORE_NOTIFY_BASE_URL"
_ADAPTERS = {"unionpay": "gateways.adapters.unionpay:UnionPayAdapter",
             "restbank": "gateways.adapters.restbank:RestBankAdapter",
             "smbank": "gateways.adapters.smbank:SmBankAdapter"}


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _encode(value: Any) -> Any:
    if isinstance(value, RsaIdentity):
        return {"rsa": value.private_key_pem().decode("ascii"), "cert": value.certificate_pem()}
    if isinstance(value, x509.Certificate):
        return {"x509": value.public_bytes(serialization.Encoding.PEM).decode("ascii")}
    if isinstance(value, Sm2PrivateKey):
        return {"sm2": value.hex}
    if isinstance(value, Sm2PublicKey):
        return {"sm2pub": value.hex}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, tuple | list):
        return {"seq": [_encode(v) for v in value]}
    if isinstance(value, Mapping):
        return {"map": {k: _encode(v) for k, v in value.items()}}
    return {"v": value}


def _decode(data: dict[str, Any]) -> Any:
    if "rsa" in data:
        key = serialization.load_pem_private_key(data["rsa"].encode("ascii"), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the directory's RSA identity holds another kind of key")
        return RsaIdentity(key, x509.load_pem_x509_certificate(data["cert"].encode("ascii")))
    if "x509" in data:
        return x509.load_pem_x509_certificate(data["x509"].encode("ascii"))
    if "sm2" in data:
        return Sm2PrivateKey.from_hex(data["sm2"])
    if "sm2pub" in data:
        return Sm2PublicKey.from_hex(data["sm2pub"])
    if "bytes" in data:
        return bytes.fromhex(data["bytes"])
    if "seq" in data:
        return tuple(_decode(v) for v in data["seq"])
    if "map" in data:
        return {k: _decode(v) for k, v in data["map"].items()}
    return data["v"]


def write_directory(banks: Mapping[str, SandboxBank], path: Path) -> Path:
    """Write what each running bank's merchant holds to `path` (0600), atomically: a
    reader never sees half a file."""
    described = {}
    for code, bank in banks.items():
        credentials = bank.credentials()
        kind = type(credentials)
        described[code] = {
            "credentials": f"{kind.__module__}:{kind.__qualname__}",
            "base_url": bank.base_url,
            "fields": {f.name: _encode(getattr(credentials, f.name))
                       for f in dataclasses.fields(credentials)},
        }
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(described, out)
    partial.replace(path)
    return path


def read_directory(path: Path) -> dict[str, Any]:
    """The adapters' credentials by bank code (each the adapter's constructor input)."""
    described = json.loads(path.read_text())
    return {code: _load(entry["credentials"])(
                **{name: _decode(value) for name, value in entry["fields"].items()})
            for code, entry in described.items()}


def directory_from(path: Path, *, notify_base_url: str | None = None,
                   timeout: Duration = dt.timedelta(seconds=5)) -> BankDirectory:
    """Adapters for the sandbox banks in the directory file at `path`."""
    adapters = [_load(_ADAPTERS[code])(credentials, code=code, timeout=timeout)
                for code, credentials in read_directory(path).items()]
    if notify_base_url:
        return BankDirectory(adapters, notify_base_url=notify_base_url)
    return BankDirectory(adapters)


def banks() -> BankDirectory:
    """PAYCORE_BANKS factory: adapters for the sandbox banks in the directory file
    (`PAYCORE_SANDBOX_DIRECTORY`), notifying `PAYCORE_NOTIFY_BASE_URL`."""
    try:
        path = Path(os.environ[DIRECTORY_ENV])
    except KeyError:
        raise ValueError(f"{DIRECTORY_ENV} must name the sandbox banks' directory file "
                         "(python -m gateways.sandbox banks --directory FILE)") from None
    return directory_from(path, notify_base_url=os.environ.get(NOTIFY_ENV))
