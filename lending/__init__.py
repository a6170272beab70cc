"""lending — supply-chain finance: products, interest, repayment, loan lifecycle, underwriting.

This first layer is pure domain logic: frozen values and functions over them, no database
and no I/O. Amounts are integer minor units; rates are `Decimal` fractions per year.
"""

from lending.creditline import (
    Band,
    BorrowerData,
    CreditLine,
    CreditLinePolicy,
    LineStep,
    credit_line,
)
from lending.daycount import DayCount
from lending.errors import (
    AmountOutOfRange,
    CreditLineExceeded,
    ExtensionLimitReached,
    ExtensionNotAllowed,
    ExtensionTooLate,
    IllegalTransition,
    InvalidAmount,
    InvalidDate,
    InvalidInput,
    InvalidPolicy,
    InvalidProduct,
    InvalidRate,
    InvalidWaterfall,
    LendingError,
    LoanClosed,
    LoanNotDisbursed,
    LoanTermsViolation,
    TermOutOfRange,
)
from lending.interest import (
    AccrualTerms,
    DailyAccrual,
    PrincipalChange,
    accrual_for,
    accrual_schedule,
    interest_accrued_through,
    interest_for,
    interest_on_principal_days,
    is_non_performing,
    penalty_accrued_through,
    principal_days,
)
from lending.lifecycle import (
    Loan,
    LoanStatus,
    StatusChange,
    accrual_terms,
    activate,
    apply,
    approve,
    decline,
    disburse,
    dpd_bucket,
    extend,
    mark_overdue,
    recover,
    refer_to_review,
    repay,
    write_off,
)
from lending.money import RoundingMode, format_minor, from_money, to_money
from lending.products import (
    DEFAULT_DPD_BUCKETS,
    MERCHANT_MICRO_LOAN,
    PRODUCTS,
    SUPPLY_CHAIN_LOAN,
    DpdBucket,
    ExtensionPolicy,
    Fee,
    LoanProduct,
)
from lending.underwriting import Application, Decision, Outcome, Reason, UnderwritingPolicy, decide
from lending.waterfall import DEFAULT_ORDER, Allocation, AllocationLine, Bucket, allocate

__all__ = [
    "DEFAULT_DPD_BUCKETS", "DEFAULT_ORDER", "MERCHANT_MICRO_LOAN", "PRODUCTS",
    "SUPPLY_CHAIN_LOAN", "AccrualTerms", "Allocation", "AllocationLine", "AmountOutOfRange",
    "Application", "Band", "BorrowerData", "Bucket", "CreditLine", "CreditLineExceeded",
    "CreditLinePolicy", "DailyAccrual", "DayCount", "Decision", "DpdBucket",
    "ExtensionLimitReached", "ExtensionNotAllowed", "ExtensionPolicy", "ExtensionTooLate",
    "Fee", "IllegalTransition", "InvalidAmount", "InvalidDate", "InvalidInput",
    "InvalidPolicy", "InvalidProduct", "InvalidRate", "InvalidWaterfall", "LendingError",
    "LineStep", "Loan", "LoanClosed", "LoanNotDisbursed", "LoanProduct", "LoanStatus",
    "LoanTermsViolation", "Outcome", "PrincipalChange", "Reason", "RoundingMode",
    "StatusChange", "TermOutOfRange", "UnderwritingPolicy", "accrual_for", "accrual_schedule",
    "accrual_terms", "activate", "allocate", "apply", "approve", "credit_line", "decide",
    "decline", "disburse", "dpd_bucket", "extend", "format_minor", "from_money",
    "interest_accrued_through", "interest_for", "interest_on_principal_days",
    "is_non_performing", "mark_overdue", "penalty_accrued_through", "principal_days",
    "recover", "refer_to_review", "repay", "to_money", "write_off",
]
