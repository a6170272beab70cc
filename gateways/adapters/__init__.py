"""Merchant-side adapters, one per bank wire protocol, each implementing
`gateways.bank.BankGateway` over `httpx.AsyncClient` with time-outs:

- `UnionPayAdapter`: UnionPay acp 5.1.0, signed browser form + back notification,
  RSA-SHA256 with certificates, queryTrans;
- `RestBankAdapter`: JSON REST with HMAC-SHA256 request signing and signed webhooks;
- `SmBankAdapter`: XML signed with SM2 over SM3, signed acknowledgements.

Each has `aclose()` (and is an async context manager) for its HTTP client.
"""

from gateways.adapters.restbank import RestBankAdapter, RestBankCredentials
from gateways.adapters.smbank import SmBankAdapter, SmBankCredentials
from gateways.adapters.unionpay import UnionPayAdapter, UnionPayCredentials, unionpay_order_id

#: any of the adapters (each a `BankGateway` with `aclose()`)
BankAdapter = UnionPayAdapter | RestBankAdapter | SmBankAdapter

__all__ = [
    "BankAdapter",
    "RestBankAdapter",
    "RestBankCredentials",
    "SmBankAdapter",
    "SmBankCredentials",
    "UnionPayAdapter",
    "UnionPayCredentials",
    "unionpay_order_id",
]
