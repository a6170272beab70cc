"""Sandbox banks: real HTTP servers on 127.0.0.1 (uvicorn, OS-chosen port, in the
caller's event loop), one per wire protocol, each with its own keys (made at start), its
own account book, a customer pay page, signed notifications with retries, fault
injection, and daily statements.

    async with SandboxFleet.start() as fleet:                 # "unionpay", "restbank", "smbank"
        adapter = fleet.adapter("unionpay", timeout=0.5)      # a BankGateway (closed with the fleet)
        bank = fleet.bank("unionpay")                         # the SandboxBank
        bank.faults.set(order.attempt_id, Fault.NO_NOTIFY)    # per reference, before the call
        instruction = await adapter.create_payment(order)
        await bank.customer_pays(instruction)                 # the customer clicks Pay
        await fleet.drain()                                   # every notification delivered
        name, data = fleet.statement_file("unionpay", day)    # MT940 / BAI2 / camt.053

Fleet (`SandboxFleet`): `start(banks=BANK_CODES, *, settings=SandboxSettings(...),
business_day=date | None, client_timeout=...)`; `bank(code)`, `base_url(code)`,
`credentials(code)` (what the merchant holds: keys, secrets, merchant id),
`adapter(code, timeout=)`, `adapters()`, `drain()`, `set_business_day(day)`,
`statement_file(code, day, format=None)`, `add_bank_charge(code, minor, day=)`.

Bank (`SandboxBank`): `merchant_id`, `base_url`, `book` (`Book`: `merchant_balance()`,
`movements`, `captured_minor(reference)`, customers), `default_customer`, `faults`
(`FaultBook.set(reference, *faults, processing_polls=3, server_errors=1,
slow_seconds=None)`, `clear()`), `notifier.deliveries` (every delivery attempt: body,
headers, status, acknowledged, note), `notifier.held`, `customer_pays(instruction,
account_number=None, decline=False)`, `find(TxnKind, reference)`, `statement_file(day)`,
`add_bank_charge(minor)`, `credentials(base_url=None)`, `adapter(timeout=, base_url=)`.
HTTP control: `POST /_sandbox/faults` (JSON `{"reference", "faults": [...],
"processing_polls", "server_errors", "slow_seconds"}`), `DELETE /_sandbox/faults`,
`GET /_sandbox/book`; pay page `GET|POST /pay/{token}`.

Faults (`Fault`, by our reference: attempt, refund or payout id): TIMEOUT (the call is
taken, its answer hangs past the client's time-out), TIMEOUT_AFTER_DEBIT (refund/payout
debited then hangs; payment notified late), NO_NOTIFY, DUPLICATE_NOTIFY,
OUT_OF_ORDER_NOTIFY (held until the next other notification, or `drain()`),
BAD_SIGNATURE (first delivery), AMOUNT_MISMATCH (+1.00), CURRENCY_MISMATCH,
MERCHANT_MISMATCH, UNKNOWN_ORDER (an extra signed notification for an order never
sent), QUERY_PROCESSING (N inquiries say "processing"), SERVER_ERROR (N answers 503
before anything is taken), SLOW (the bank waits before acting).

Bank transaction ids (`BankNotification.bank_txn_id`, `PaymentStatus.bank_txn_id`, and
the ids on the statements' batch details): UnionPay `queryId` (21 digits), REST bank
`pay_...`/`re_...`/`po_...`, SM bank `SMP...`/`SMR...`/`SMT...`.  Statements: the day's
captures as ONE batch credit net of the bank's fee (`SandboxSettings.fee_bps`, per
payment, half-even), refunds and payouts (end-to-end id = our payout id) as their own
debit lines, bank charges on demand; opening + lines = closing.
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
