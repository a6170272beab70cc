"""gateways — the payment instrument in checkout: intents, bank adapters, notifications,
refunds and payouts (DESIGN.md §4). The wire protocols live in `gateways.protocols`."""

from gateways.schema import metadata

__all__ = ["metadata"]
