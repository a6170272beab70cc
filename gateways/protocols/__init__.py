"""The banks' wire protocols: message formats, signing and verification, pure and shared
by the merchant-side adapters and the sandbox banks.

- `unionpay`: UnionPay online gateway (acp 5.1.0), form fields signed with RSA-SHA256
  and X.509 certificates;
- `restbank`: JSON REST with HMAC-SHA256 request signing and signed webhooks;
- `smbank`: XML signed with SM2 over SM3 (Chinese national cryptography).
"""

from gateways.protocols import restbank, smbank, unionpay
from gateways.protocols.errors import (
    AmountNotAccepted,
    MalformedMessage,
    ProtocolError,
    ReplayedMessage,
    SignatureInvalid,
    StaleMessage,
)
from gateways.protocols.keys import (
    RsaIdentity,
    generate_api_key,
    generate_hmac_secret,
    generate_rsa_identity,
    generate_sm2_private_key,
)
from gateways.protocols.replay import InMemoryReplayGuard, ReplayGuard
from gateways.protocols.sm2 import Sm2PrivateKey, Sm2PublicKey

__all__ = [
    "AmountNotAccepted",
    "InMemoryReplayGuard",
    "MalformedMessage",
    "ProtocolError",
    "ReplayGuard",
    "ReplayedMessage",
    "RsaIdentity",
    "SignatureInvalid",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "StaleMessage",
    "generate_api_key",
    "generate_hmac_secret",
    "generate_rsa_identity",
    "generate_sm2_private_key",
    "restbank",
    "smbank",
    "unionpay",
]
