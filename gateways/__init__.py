"""gateways — the payment instrument in checkout: intents, bank adapters, notifications,
refunds and payouts (DESIGN.md §4). The wire protocols live in `gateways.protocols`, the
bank adapters in `gateways.adapters`, the sandbox banks in `gateways.sandbox`.

Service functions (what the HTTP API, the CLI, the demo and lending call). `banks` is a
`BankDirectory` (bank code -> adapter, with circuit breakers and time-outs; after
`banks.share_breakers(engine)` the breakers are the database's, one per bank for every
process: `gateways.breakers`); `engine`
functions run their own transactions (bank I/O happens outside them); `conn` functions
run in the caller's transaction.

Checkout
- `create_intent(engine, banks, IntentRequest) -> Checkout` — intent + attempt at the
  chosen bank + the `PaymentInstruction` for the checkout page (same order again: the same
  checkout; other terms under the same order id: `DuplicateOrder`).
- `retry_intent(engine, banks, intent_id, bank, *, merchant_id=None) -> Checkout` — a
  failed intent tried at another bank.
- `get_intent(conn, intent_id, *, merchant_id=None) -> PaymentIntent`,
  `get_checkout(conn, intent_id, *, merchant_id=None) -> Checkout`,
  `list_intents(conn, merchant_id, *, status=None, order_id=None, limit=50, offset=0)`,
  `list_attempts(conn, intent_id, *, merchant_id=None)` — with `merchant_id`, another
  merchant's intent is `IntentNotFound`.
- `cancel_intent(conn, intent_id, *, merchant_id=None) -> PaymentIntent` — created or
  failed only (a pending one may be being paid: it expires instead).
- `expire_intents(conn, now=None) -> list[str]`.
- `set_supplier_terms(conn, SupplierTerms)`, `get_supplier_terms(conn, supplier_id)` —
  the commission rate and refund-commission policy per supplier (needed before checkout).

Refunds
- `refund_payment(engine, banks, intent_id, amount, *, reason="", refund_id=None,
  merchant_id=None) -> Refund` — partial, several, never more than captured
  (`RefundExceedsCaptured`); `get_refund(conn, refund_id, *, merchant_id=None)`,
  `list_refunds(conn, intent_id, *, merchant_id=None)`.

Notifications
- `handle_notification(engine, banks, bank_code, headers, body) -> BankReply` — wire a
  `POST {notify_base_url}/{bank_code}` route to it and send the reply back as it is
  (`gateways.receiver.NotificationReceiver` is such a route as a bare ASGI app).

Payouts (checkout settlement, and lending's disbursements)
- money leaves only through `request_supplier_payout(conn, SupplierPayoutRequest, controls)`
  (gateways.approvals): to a verified, cooled-off account of that supplier in the register,
  from its own payable, maker-checker — settlement runs, manual payouts and loan
  disbursements alike. There is no public way to pay a beneficiary of the caller's
  choosing (`gateways.payout_records.record_payout`, the step underneath, is internal).
- `before_supplier_payout(check)` — the application's check run first in every new
  supplier payout (paycore: a returned loan disbursement is unwound before its payable
  pays out); it refuses with `PayoutBlocked`. `after_payout_returned(hook)` — run as
  each payout return is booked, in its transaction (paycore unwinds a returned loan
  disbursement there).
- `submit_payouts(engine, banks, *, payout_ids=None, limit=100) -> list[Payout]` — hand
  requested payouts to the banks in failover order (circuit-breaker aware).
- `get_payout(conn, id)`, `list_payouts(conn, *, status=None, beneficiary_ref=None)`,
  `cancel_payout(conn, id)`.

Janitor, operators and health
- `list_in_review(conn)`, `list_inquiries(conn)`, `list_rejections(conn, *, limit, reason)`.
- `run_janitor(engine, banks, *, now=None, limit=200, max_tries=8) -> JanitorReport` —
  status inquiries on a back-off schedule, expiry, manual review after `max_tries`.
- `inquire_now(engine, banks, subject, subject_id) -> AskedNow` — one unknown attempt,
  refund or payout asked about at once, as the janitor's pass asks (the console's "ask the
  bank now").
- `bank_health_report(banks)`, `save_bank_health(conn, banks)`, `load_bank_health(conn)`;
  `save_bank_certificates(conn, banks)`, `load_bank_certificates(conn)` — the banks'
  certificates and their expiry (`CertificateStatus.warning(now)`: 30 days ahead).

Payouts that come back, and the payout review queue
- `book_payout_return(conn, payout_id, *, bank, bank_return_id, amount_minor, currency,
  reason, source)` — a succeeded payout the bank returned (退票): `returned`, booked back
  once (`payout.return`: Dr 1103.clearing.payout, Cr the debit account), a review item;
  a return for a payout not succeeded, or another amount: review, nothing booked.
- `check_payout_returns(engine, banks, *, payout_ids=None, within=7 days)` — ask the
  banks about succeeded payouts; a return in the answer is booked as above.
- `list_payout_reviews(conn, *, status="open")`, `resolve_payout_review(conn, id, by=, note=)`.

Every status change is a compare-and-set; errors are `gateways.PaymentError` subclasses
(`gateways.errors`), each with a short `code` for problem+json.
"""

from gateways.adapters import (
    BankAdapter,
    RestBankAdapter,
    RestBankCredentials,
    SmBankAdapter,
    SmBankCredentials,
    UnionPayAdapter,
    UnionPayCredentials,
)
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
from gateways.certificates import (
    CertificateState,
    CertificateStatus,
    load_bank_certificates,
    save_bank_certificates,
)
from gateways.checkout import (
    cancel_intent,
    create_intent,
    expire_intents,
    get_checkout,
    get_intent,
    list_attempts,
    list_intents,
    retry_intent,
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
from gateways.health import bank_health_report, load_bank_health, save_bank_health
from gateways.inquiries import Inquiry
from gateways.intent_changes import IntentChanges
from gateways.janitor import (
    DEFAULT_MAX_TRIES,
    AskedNow,
    JanitorReport,
    inquire_now,
    run_janitor,
)
from gateways.limits import AmountNotSupported, BankLimits, check_amount, limits_of, taking
from gateways.notifications import handle_notification
from gateways.payout_returns import ReturnApplied, ReturnCheck, book_payout_return
from gateways.payout_reviews import (
    PayoutReview,
    ReviewKind,
    list_payout_reviews,
    resolve_payout_review,
)
from gateways.payouts import (
    cancel_payout,
    get_payout,
    list_payouts,
    settle_payout,
    submit_payout,
    submit_payouts,
)
from gateways.queries import (
    RejectedNotification,
    list_in_review,
    list_inquiries,
    list_rejections,
)
from gateways.receiver import NotificationReceiver
from gateways.refunds import get_refund, list_refunds, refund_payment
from gateways.return_checks import check_payout_returns
from gateways.routing import BankDirectory, BankHealth, BreakerState, CircuitBreaker, CircuitOpen
from gateways.sandbox import Fault, SandboxFleet, SandboxSettings
from gateways.schema import metadata
from gateways.states import AttemptState, IntentState, PayoutState, RefundState
from gateways.terms import get_supplier_terms, set_supplier_terms
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
    "DEFAULT_MAX_TRIES",
    "AmountNotSupported",
    "AskedNow",
    "Attempt",
    "AttemptState",
    "BankDirectory",
    "BankError",
    "BankGateway",
    "BankHealth",
    "BankLimits",
    "BankNotification",
    "BankOutcome",
    "BankRejected",
    "BankReply",
    "BankUnavailable",
    "Beneficiary",
    "BreakerState",
    "CertificateState",
    "CertificateStatus",
    "Checkout",
    "CircuitBreaker",
    "CircuitOpen",
    "ConcurrentTransition",
    "DuplicateOrder",
    "IllegalTransition",
    "Inquiry",
    "IntentChanges",
    "IntentNotFound",
    "IntentRequest",
    "IntentState",
    "InvalidPaymentRequest",
    "JanitorReport",
    "NotFound",
    "NotificationKind",
    "NotificationReceiver",
    "OutcomeUnknown",
    "PaymentError",
    "PaymentInstruction",
    "PaymentIntent",
    "Payout",
    "PayoutBlocked",
    "PayoutConflict",
    "PayoutNotFound",
    "PayoutRequest",
    "PayoutReview",
    "PayoutState",
    "Refund",
    "RefundCommission",
    "RefundExceedsCaptured",
    "RefundNotFound",
    "RefundState",
    "RejectedNotification",
    "ReturnApplied",
    "ReturnCheck",
    "ReviewKind",
    "SupplierTerms",
    "UnknownBank",
    "UnknownSupplier",
    "after_payout_returned",
    "bank_health_report",
    "before_supplier_payout",
    "book_payout_return",
    "cancel_intent",
    "cancel_payout",
    "check_amount",
    "check_payout_returns",
    "create_intent",
    "expire_intents",
    "get_checkout",
    "get_intent",
    "get_payout",
    "get_refund",
    "get_supplier_terms",
    "handle_notification",
    "inquire_now",
    "limits_of",
    "list_attempts",
    "list_in_review",
    "list_inquiries",
    "list_intents",
    "list_payout_reviews",
    "list_payouts",
    "list_refunds",
    "list_rejections",
    "load_bank_certificates",
    "load_bank_health",
    "metadata",
    "refund_payment",
    "resolve_payout_review",
    "retry_intent",
    "run_janitor",
    "save_bank_certificates",
    "save_bank_health",
    "set_supplier_terms",
    "settle_payout",
    "submit_payout",
    "submit_payouts",
    "taking",
]

# The bank adapters and the sandbox banks (gateways.adapters, gateways.sandbox).
__all__ += [
    "BankAdapter", "Fault", "RestBankAdapter", "RestBankCredentials", "SandboxFleet",
    "SandboxSettings", "SmBankAdapter", "SmBankCredentials", "UnionPayAdapter",
    "UnionPayCredentials",
]

# Payout controls (issue #15 §2): the register of suppliers' bank accounts (encrypted at
# rest), supplier payouts from the supplier's own payable to a verified account, and
# maker-checker approval (gateways.account_keys, gateways.beneficiaries, gateways.approvals).
from gateways.account_keys import (  # noqa: E402
    AccountKeys,
    AccountKeysMissing,
    current_account_keys,
    new_key_spec,
    use_account_keys,
)
from gateways.approvals import (  # noqa: E402
    NotAwaitingApproval,
    PayoutControls,
    SupplierPayout,
    SupplierPayoutRequest,
    approve_payout,
    find_supplier_payout,
    list_pending_approval,
    reject_payout,
    request_supplier_payout,
    supplier_payable,
)
from gateways.beneficiaries import (  # noqa: E402
    AccountNotUsable,
    AccountState,
    BeneficiaryAccount,
    BeneficiaryNotFound,
    DuplicateAccount,
    FourEyesViolation,
    add_account,
    audit_trail,
    change_account,
    get_account,
    list_accounts,
    rekey_accounts,
    retire_account,
    settlement_account,
    suspend_account,
    usable_account,
    verify_account,
)
from gateways.beneficiaries import audit as record_control_event  # noqa: E402
from gateways.payout_hooks import (  # noqa: E402
    PayoutBlocked,
    after_payout_returned,
    before_supplier_payout,
)

__all__ += [
    "AccountKeys", "AccountKeysMissing", "AccountNotUsable", "AccountState",
    "BeneficiaryAccount", "BeneficiaryNotFound", "DuplicateAccount", "FourEyesViolation",
    "NotAwaitingApproval", "PayoutControls", "SupplierPayout", "SupplierPayoutRequest", "add_account",
    "approve_payout", "audit_trail", "change_account", "current_account_keys",
    "find_supplier_payout", "get_account", "list_accounts", "list_pending_approval",
    "new_key_spec", "record_control_event", "reject_payout", "rekey_accounts",
    "request_supplier_payout",
    "retire_account", "settlement_account", "supplier_payable", "suspend_account",
    "usable_account",
    "use_account_keys", "verify_account",
]
