"""A sandbox bank's own account book: its customers' accounts, the marketplace
merchant's settlement account at the bank, and every movement on that account.

This is the bank's truth, kept independently of paycore's ledger, so that a test can
compare the two after faults (and so that the bank's statement is printed from it).
Amounts are integer minor units of the bank's one currency.

On the merchant's settlement account:
- a capture credits the gross amount less the bank's fee (the statement shows the
  day's captures as ONE batch credit, net of fees, listing each payment);
- a refund debits the refunded amount (its own statement line);
- a payout debits the amount (its own line, end-to-end id = the merchant's payout id);
- a bank charge debits an amount the merchant's books do not know about;
- a payout's return (退票) credits the payout's amount back (its own line, end-to-end id =
  the merchant's payout id, bank reference = the return's id).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

__all__ = [
    "Book",
    "BookError",
    "CustomerAccount",
    "InsufficientFunds",
    "Movement",
    "MovementKind",
    "UnknownAccount",
]


class BookError(Exception):
    """A movement the bank refuses."""


class InsufficientFunds(BookError):
    pass


class UnknownAccount(BookError):
    pass


class MovementKind(StrEnum):
    CAPTURE = "capture"
    REFUND = "refund"
    PAYOUT = "payout"
    CHARGE = "charge"
    RETURN = "return"


@dataclass
class CustomerAccount:
    number: str
    holder: str = field(repr=False)
    balance_minor: int


@dataclass(frozen=True)
class Movement:
    """One movement on the merchant's settlement account."""

    kind: MovementKind
    #: the bank's id of the transaction (printed on the statement / batch detail)
    bank_txn_id: str
    #: the merchant's id: attempt id, refund id or payout id ("" for a bank charge)
    reference: str
    #: gross amount, positive
    amount_minor: int
    booked_on: dt.date
    booked_at: dt.datetime
    fee_minor: int = 0
    counterparty: str = ""
    description: str = ""
    #: refunds: the payment's bank transaction id
    original_bank_txn_id: str | None = None

    @property
    def effect_minor(self) -> int:
        """Signed effect on the merchant's account (credit positive)."""
        if self.kind is MovementKind.CAPTURE:
            return self.amount_minor - self.fee_minor
        if self.kind is MovementKind.RETURN:
            return self.amount_minor
        return -self.amount_minor


def fee_for(amount_minor: int, fee_bps: int) -> int:
    """The bank's merchant discount fee on one payment, rounded half-even to a minor unit."""
    exact = Decimal(amount_minor) * Decimal(fee_bps) / Decimal(10_000)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


class Book:
    def __init__(
        self,
        *,
        bank_code: str,
        currency: str,
        merchant_account: str,
        merchant_name: str,
        opening_balance_minor: int = 0,
        fee_bps: int = 60,
        business_day: Callable[[], dt.date] | None = None,
    ) -> None:
        self.bank_code = bank_code
        self.currency = currency
        self.merchant_account = merchant_account
        self.merchant_name = merchant_name
        self.opening_balance_minor = opening_balance_minor
        self.fee_bps = fee_bps
        self.business_day: Callable[[], dt.date] = business_day or (
            lambda: dt.datetime.now(dt.UTC).date()
        )
        self.customers: dict[str, CustomerAccount] = {}
        self.movements: list[Movement] = []
        #: what left through payouts, by beneficiary account (other banks' accounts)
        self.paid_out: dict[str, int] = {}

    # ------------------------------------------------------------------ customers

    def open_customer(
        self, holder: str, balance_minor: int, number: str | None = None
    ) -> CustomerAccount:
        number = number or "62" + "".join(str(secrets.randbelow(10)) for _ in range(14))
        account = CustomerAccount(number=number, holder=holder, balance_minor=balance_minor)
        self.customers[number] = account
        return account

    def customer(self, number: str) -> CustomerAccount:
        account = self.customers.get(number)
        if account is None:
            raise UnknownAccount("no such customer account")
        return account

    # ------------------------------------------------------------------ movements

    def capture(
        self, *, bank_txn_id: str, reference: str, amount_minor: int, customer_number: str,
        at: dt.datetime, description: str = "",
    ) -> Movement:
        account = self.customer(customer_number)
        if account.balance_minor < amount_minor:
            raise InsufficientFunds("the customer's balance does not cover the payment")
        account.balance_minor -= amount_minor
        return self._add(Movement(
            kind=MovementKind.CAPTURE, bank_txn_id=bank_txn_id, reference=reference,
            amount_minor=amount_minor, fee_minor=fee_for(amount_minor, self.fee_bps),
            booked_on=self.business_day(), booked_at=at, counterparty=account.number,
            description=description,
        ))

    def refund(
        self, *, bank_txn_id: str, reference: str, original_bank_txn_id: str,
        amount_minor: int, customer_number: str, at: dt.datetime,
    ) -> Movement:
        self.customer(customer_number).balance_minor += amount_minor
        return self._add(Movement(
            kind=MovementKind.REFUND, bank_txn_id=bank_txn_id, reference=reference,
            amount_minor=amount_minor, booked_on=self.business_day(), booked_at=at,
            counterparty=customer_number, original_bank_txn_id=original_bank_txn_id,
            description=f"REFUND {original_bank_txn_id}",
        ))

    def payout(
        self, *, bank_txn_id: str, reference: str, amount_minor: int, beneficiary_name: str,
        beneficiary_account: str, at: dt.datetime, description: str = "",
    ) -> Movement:
        if self.merchant_balance() < amount_minor:
            raise InsufficientFunds("the settlement account's balance does not cover the payout")
        self.paid_out[beneficiary_account] = (
            self.paid_out.get(beneficiary_account, 0) + amount_minor
        )
        return self._add(Movement(
            kind=MovementKind.PAYOUT, bank_txn_id=bank_txn_id, reference=reference,
            amount_minor=amount_minor, booked_on=self.business_day(), booked_at=at,
            counterparty=beneficiary_name, description=description,
        ))

    def payout_return(
        self, *, bank_txn_id: str, reference: str, original_bank_txn_id: str,
        amount_minor: int, beneficiary_name: str, beneficiary_account: str, reason: str,
        at: dt.datetime,
    ) -> Movement:
        """A paid payout comes back from the beneficiary's bank: credited back."""
        self.paid_out[beneficiary_account] = (
            self.paid_out.get(beneficiary_account, 0) - amount_minor
        )
        return self._add(Movement(
            kind=MovementKind.RETURN, bank_txn_id=bank_txn_id, reference=reference,
            amount_minor=amount_minor, booked_on=self.business_day(), booked_at=at,
            counterparty=beneficiary_name, original_bank_txn_id=original_bank_txn_id,
            description=f"RETURN {reason}"[:100],
        ))

    def charge(
        self, amount_minor: int, *, description: str = "ACCOUNT MAINTENANCE FEE",
        on: dt.date | None = None, at: dt.datetime | None = None,
    ) -> Movement:
        """A bank charge the merchant's books do not know (reconciliation must find it)."""
        day = on or self.business_day()
        moment = at or dt.datetime.combine(day, dt.time(23, 0), dt.UTC)
        return self._add(Movement(
            kind=MovementKind.CHARGE, bank_txn_id="CHG" + secrets.token_hex(6).upper(),
            reference="", amount_minor=amount_minor, booked_on=day, booked_at=moment,
            description=description,
        ))

    def _add(self, movement: Movement) -> Movement:
        if movement.amount_minor <= 0:
            raise BookError("a movement's amount must be positive")
        self.movements.append(movement)
        return movement

    # ------------------------------------------------------------------ queries

    def merchant_balance(self, *, before: dt.date | None = None) -> int:
        """The settlement account's balance, now or at the start of `before`."""
        return self.opening_balance_minor + sum(
            m.effect_minor for m in self.movements if before is None or m.booked_on < before
        )

    def movements_on(self, day: dt.date) -> list[Movement]:
        return [m for m in self.movements if m.booked_on == day]

    def captured_minor(self, reference: str) -> int:
        return sum(m.amount_minor for m in self.movements
                   if m.kind is MovementKind.CAPTURE and m.reference == reference)

    def by_kind(self, kind: MovementKind) -> list[Movement]:
        return [m for m in self.movements if m.kind is kind]
