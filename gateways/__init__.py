"""gateways — the payment instrument in checkout: intents, bank adapters, notifications,
refunds and payouts (DESIGN.md §4). The wire protocols live in `gateways.protocols`, the
bank adapters in `gateways.adapters`, the sandbox banks in `gateways.sandbox`.

The service functions (what the HTTP API, the CLI, the demo and lending call):

Payouts (used by checkout settlement and by lending's disbursements)
- `request_payout(conn, PayoutRequest) -> Payout`: record + ledger hold, in the caller's
  transaction, no bank I/O; idempotent per payout id (`PayoutConflict` otherwise).
- `submit_payouts(engine, banks, *, payout_ids=None, limit=100) -> list[Payout]`: hand
  requested payouts to the banks in failover order (circuit-breaker aware).
- `get_payout(conn, id)`, `list_payouts(conn, ...)`, `cancel_payout(conn, id)`.

Everything that changes a status does it as a compare-and-set; errors are
`gateways.PaymentError` subclasses (see `gateways.errors`).
"""

from gateways.adapters import RestBankAdapter, RestBankCredentials
from gateways.bank import (
    BankError,
    BankGateway,
    BankNotification,
    BankOutcome,
    BankRejected,
    BankReply,
    BankUnavailable,
    Beneficiary,
    NotificationKind,
    OutcomeUnknown,
    PaymentInstruction,
)
from gateways.errors import (
    ConcurrentTransition,
    DuplicateOrder,
    IllegalTransition,
    IntentNotFound,
    InvalidPaymentRequest,
    NotFound,
    PaymentError,
    PayoutConflict,
    PayoutNotFound,
    RefundExceedsCaptured,
    RefundNotFound,
    UnknownBank,
    UnknownSupplier,
)
from gateways.payouts import (
    cancel_payout,
    get_payout,
    list_payouts,
    request_payout,
    settle_payout,
    submit_payout,
    submit_payouts,
)
from gateways.routing import BankDirectory, BankHealth, BreakerState, CircuitBreaker, CircuitOpen
from gateways.sandbox import Fault, SandboxFleet, SandboxSettings
from gateways.schema import metadata
from gateways.states import AttemptState, IntentState, PayoutState, RefundState
from gateways.types import (
    Attempt,
    Checkout,
    IntentRequest,
    PaymentIntent,
    Payout,
    PayoutRequest,
    Refund,
    RefundCommission,
    SupplierTerms,
)

__all__ = [
    "Attempt", "AttemptState", "BankDirectory", "BankError", "BankGateway", "BankHealth",
    "BankNotification", "BankOutcome", "BankRejected", "BankReply", "BankUnavailable",
    "Beneficiary", "BreakerState", "Checkout", "CircuitBreaker", "CircuitOpen",
    "ConcurrentTransition", "DuplicateOrder", "IllegalTransition", "IntentNotFound",
    "IntentRequest", "IntentState", "InvalidPaymentRequest", "NotFound", "NotificationKind",
    "OutcomeUnknown", "PaymentError", "PaymentInstruction", "PaymentIntent", "Payout",
    "PayoutConflict", "PayoutNotFound", "PayoutRequest", "PayoutState", "Refund",
    "RefundCommission", "RefundExceedsCaptured", "RefundNotFound", "RefundState",
    "SupplierTerms", "UnknownBank", "UnknownSupplier", "cancel_payout", "get_payout",
    "list_payouts", "metadata", "request_payout", "settle_payout", "submit_payout",
    "submit_payouts",
]

# The bank adapters and the sandbox banks (gateways.adapters, gateways.sandbox).
__all__ += [
    "Fault", "RestBankAdapter", "RestBankCredentials", "SandboxFleet", "SandboxSettings",
]
