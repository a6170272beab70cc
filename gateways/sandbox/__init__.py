"""Sandbox banks: real HTTP servers on 127.0.0.1, one per wire protocol, each with its
own keys, account book, customer pay page, notifications and fault injection.

    async with SandboxFleet.start() as fleet:
        adapter = fleet.adapter("unionpay")
        ...

See `gateways.sandbox.fleet` (start/stop, adapters, statements), `.base` (what every
bank does, control endpoints), `.faults` (what can be injected), and the bank modules
`.unionpay`, `.restbank`, `.smbank` for their routes.
"""

from gateways.sandbox.base import (
    NoticeFacts,
    PayPageResult,
    SandboxBank,
    SandboxSettings,
    Txn,
    TxnKind,
    TxnState,
)
from gateways.sandbox.book import Book, Movement, MovementKind
from gateways.sandbox.faults import Fault, FaultBook, FaultPlan
from gateways.sandbox.fleet import BANK_CODES, SandboxFleet
from gateways.sandbox.notifier import Delivery

__all__ = [
    "BANK_CODES",
    "Book",
    "Delivery",
    "Fault",
    "FaultBook",
    "FaultPlan",
    "Movement",
    "MovementKind",
    "NoticeFacts",
    "PayPageResult",
    "SandboxBank",
    "SandboxFleet",
    "SandboxSettings",
    "Txn",
    "TxnKind",
    "TxnState",
]
