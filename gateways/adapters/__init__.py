"""Merchant-side adapters, one per bank wire protocol, each implementing
`gateways.bank.BankGateway` over `httpx.AsyncClient` with time-outs."""

from gateways.adapters.restbank import RestBankAdapter, RestBankCredentials

__all__ = ["RestBankAdapter", "RestBankCredentials"]
