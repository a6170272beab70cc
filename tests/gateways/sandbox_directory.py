"""The deployment's bank directory for a paycore process started by a test: the sandbox
banks' merchant credentials (keys, certificates, secrets, URLs), written to a file by the
test that started the banks, read back here in the other process.

    PAYCORE_BANKS=tests.gateways.sandbox_directory:banks
    PAYCORE_TEST_SANDBOX_CREDENTIALS=/path/to/credentials.json

Real key material travels as PEM / hex; nothing is stubbed.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateways import BankDirectory
from gateways.protocols import RsaIdentity, Sm2PrivateKey
from gateways.protocols.sm2 import Sm2PublicKey
from gateways.sandbox import SandboxFleet

ENV = "PAYCORE_TEST_SANDBOX_CREDENTIALS"
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
        assert isinstance(key, rsa.RSAPrivateKey)
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


def write_credentials(fleet: SandboxFleet, path: Path) -> Path:
    """What each bank's merchant holds, for another process to build its adapters from."""
    banks = {}
    for code in fleet.banks:
        credentials = fleet.credentials(code)
        kind = type(credentials)
        banks[code] = {
            "credentials": f"{kind.__module__}:{kind.__qualname__}",
            "fields": {f.name: _encode(getattr(credentials, f.name))
                       for f in dataclasses.fields(credentials)},
        }
    path.write_text(json.dumps(banks))
    return path


#: optional: where the banks notify (the API server's .../v1/notifications) and the
#: adapters' read time-out in seconds (below the sandbox's hang, for time-out faults)
NOTIFY_ENV, TIMEOUT_ENV = "PAYCORE_TEST_NOTIFY_BASE_URL", "PAYCORE_TEST_ADAPTER_TIMEOUT"


def banks() -> BankDirectory:
    """PAYCORE_BANKS factory: adapters for the sandbox banks named in the credentials file."""
    described = json.loads(Path(os.environ[ENV]).read_text())
    timeout = float(os.environ.get(TIMEOUT_ENV, "5.0"))
    adapters = []
    for code, entry in described.items():
        credentials = _load(entry["credentials"])(
            **{name: _decode(value) for name, value in entry["fields"].items()})
        adapters.append(_load(_ADAPTERS[code])(credentials, code=code, timeout=timeout))
    if os.environ.get(NOTIFY_ENV):
        return BankDirectory(adapters, notify_base_url=os.environ[NOTIFY_ENV])
    return BankDirectory(adapters)
