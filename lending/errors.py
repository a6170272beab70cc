"""Lending's errors: a small hierarchy a caller can catch precisely.

Every error is raised before anything changes: the domain functions are pure, so a caller
that catches one still holds the loan, product or application it started with.
"""

from __future__ import annotations


class LendingError(Exception):
    """Base of every error the lending domain raises on purpose."""

    #: a short machine-readable name, used as the problem type by the HTTP API
    code = "lending-error"


# -- bad input: no state of any loan could make these valid ------------------------------


class InvalidInput(LendingError):
    """An argument is malformed (wrong type, negative, unknown name)."""

    code = "invalid-input"


class InvalidAmount(InvalidInput):
    """An amount is not an integer number of minor units, or is negative where it cannot be."""

    code = "invalid-amount"


class InvalidRate(InvalidInput):
    """A rate is not a finite, non-negative `Decimal` (a `float` is refused, never coerced)."""

    code = "invalid-rate"


class InvalidProduct(InvalidInput):
    """A loan product's configuration contradicts itself."""

    code = "invalid-product"


class InvalidWaterfall(InvalidInput):
    """A repayment order repeats a bucket or leaves an outstanding bucket out."""

    code = "invalid-waterfall"


class InvalidPolicy(InvalidInput):
    """An underwriting policy's configuration contradicts itself."""

    code = "invalid-policy"


# -- the application breaks the product's or the borrower's limits ------------------------


class LoanTermsViolation(LendingError):
    """A requested loan does not fit its product or the borrower's credit line."""

    code = "loan-terms-violation"


class AmountOutOfRange(LoanTermsViolation):
    code = "amount-out-of-range"

    def __init__(self, product: str, amount: str, minimum: str, maximum: str) -> None:
        self.product = product
        self.amount = amount
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(
            f"{amount} is outside the {product!r} range of {minimum} to {maximum}"
        )


class TermOutOfRange(LoanTermsViolation):
    code = "term-out-of-range"

    def __init__(self, product: str, term_days: int, minimum: int, maximum: int) -> None:
        self.product = product
        self.term_days = term_days
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(
            f"a term of {term_days} days is outside the {product!r} range of "
            f"{minimum} to {maximum} days"
        )


class CreditLineExceeded(LoanTermsViolation):
    code = "credit-line-exceeded"

    def __init__(self, amount: str, available: str) -> None:
        self.amount = amount
        self.available = available
        super().__init__(f"{amount} exceeds the available credit line of {available}")


# -- the loan's state forbids the step --------------------------------------------------------


class IllegalTransition(LendingError):
    """The loan's current status does not allow the requested step."""

    code = "illegal-transition"

    def __init__(self, loan_id: str, current: str, target: str, allowed: tuple[str, ...]) -> None:
        self.loan_id = loan_id
        self.current = current
        self.target = target
        self.allowed = allowed
        nexts = ", ".join(allowed) if allowed else "nothing (it is final)"
        super().__init__(
            f"loan {loan_id!r} is {current} and cannot become {target}; "
            f"from {current} it can become: {nexts}"
        )


class LoanClosed(IllegalTransition):
    """The loan is repaid, declined or recovered: nothing more can happen to it."""

    code = "loan-closed"


class ExtensionNotAllowed(LendingError):
    code = "extension-not-allowed"


class ExtensionLimitReached(ExtensionNotAllowed):
    code = "extension-limit-reached"

    def __init__(self, loan_id: str, used: int, allowed: int) -> None:
        self.loan_id = loan_id
        self.used = used
        self.allowed = allowed
        super().__init__(
            f"loan {loan_id!r} was already extended {used} time(s); "
            f"its product allows {allowed}"
        )


class ExtensionTooLate(ExtensionNotAllowed):
    code = "extension-too-late"

    def __init__(self, loan_id: str, requested_on: str, maturity: str) -> None:
        self.loan_id = loan_id
        self.requested_on = requested_on
        self.maturity = maturity
        super().__init__(
            f"loan {loan_id!r} matures on {maturity}; an extension must be requested "
            f"before maturity, not on {requested_on}"
        )


class InvalidDate(LendingError):
    """A date is out of order for the loan (e.g. disbursed before approval)."""

    code = "invalid-date"


class LoanNotDisbursed(LendingError):
    """The step needs a disbursed loan (a start date and a maturity) and this one is not."""

    code = "loan-not-disbursed"

    def __init__(self, loan_id: str, status: str) -> None:
        self.loan_id = loan_id
        self.status = status
        super().__init__(f"loan {loan_id!r} is {status}: it has not been disbursed yet")


# -- the persisted book ----------------------------------------------------------------


class NotFound(LendingError):
    code = "not-found"


class BorrowerNotFound(NotFound):
    code = "borrower-not-found"

    def __init__(self, borrower_id: str) -> None:
        self.borrower_id = borrower_id
        super().__init__(f"no borrower {borrower_id!r}")


class LoanNotFound(NotFound):
    code = "loan-not-found"

    def __init__(self, loan_id: str) -> None:
        self.loan_id = loan_id
        super().__init__(f"no loan {loan_id!r}")


class ProductNotFound(NotFound):
    code = "product-not-found"

    def __init__(self, product: str) -> None:
        self.product = product
        super().__init__(f"unknown loan product {product!r}")


class DuplicateLoan(LendingError):
    code = "duplicate-loan"

    def __init__(self, loan_id: str) -> None:
        self.loan_id = loan_id
        super().__init__(f"a loan {loan_id!r} already exists")


class ConcurrentUpdate(LendingError):
    """The loan changed between reading and writing it; nothing was written. Retry."""

    code = "concurrent-update"

    def __init__(self, loan_id: str, expected_status: str) -> None:
        self.loan_id = loan_id
        super().__init__(f"loan {loan_id!r} is no longer {expected_status} at the version "
                         "read; another writer changed it first")


class SelfReview(LendingError):
    """The officer deciding a queued application is the person who applied for it: four
    eyes on credit, as on payouts."""

    code = "four-eyes"

    def __init__(self, loan_id: str, officer: str) -> None:
        self.loan_id = loan_id
        self.officer = officer
        super().__init__(f"{officer} applied for loan {loan_id!r}; another officer must "
                         "decide it")


class NotInReview(LendingError):
    code = "not-in-review"

    def __init__(self, loan_id: str, status: str) -> None:
        self.loan_id = loan_id
        self.status = status
        super().__init__(f"loan {loan_id!r} is {status}, not waiting in the manual-review queue")


class InvalidImport(InvalidInput):
    """An imported file or record is malformed; nothing of it was imported."""

    code = "invalid-import"


class RepaymentConflict(LendingError):
    """A repayment id was already used for another loan or amount; nothing was posted."""

    code = "repayment-conflict"

    def __init__(self, repayment_id: str) -> None:
        self.repayment_id = repayment_id
        super().__init__(f"repayment id {repayment_id!r} was already used for a different "
                         "repayment; use a new id for a new repayment")
