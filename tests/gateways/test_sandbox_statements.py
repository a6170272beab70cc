"""The sandbox banks' statements parse with the reconciliation parsers, add up, and name
each payment by the same bank transaction id the adapters report."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from moneyed import Money

from gateways.bank import (
    BankCall,
    BankOutcome,
    Beneficiary,
    PaymentOrder,
    PayoutOrder,
    RefundOrder,
)
from gateways.sandbox import MovementKind, SandboxFleet, SandboxSettings
from gateways.sandbox.book import Book
from gateways.sandbox.statements import CSV_PROFILE_COLUMNS, FORMATS, day_statement, render
from ledger import from_minor
from reconciliation import CsvProfile, Statement, parse_statement

DAY = dt.date(2026, 11, 24)
AT = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


def cny(minor: int) -> Money:
    return from_minor(minor, "CNY")


def book_of_a_day() -> tuple[Book, dict[str, str]]:
    day = [DAY - dt.timedelta(days=1)]
    book = Book(bank_code="smbank", currency="CNY", merchant_account="6222600110012345",
                merchant_name="PAYCORE MARKETPLACE", opening_balance_minor=500_000,
                fee_bps=60, business_day=lambda: day[0])
    customer = book.open_customer("Li Lei", 10_000_000).number
    book.capture(bank_txn_id="P0", reference="att0", amount_minor=7_000,
                 customer_number=customer, at=AT)
    day[0] = DAY
    for n, amount in enumerate((12_345, 100_000, 999), start=1):
        book.capture(bank_txn_id=f"P{n}", reference=f"att{n}", amount_minor=amount,
                     customer_number=customer, at=AT)
    book.refund(bank_txn_id="R1", reference="ref1", original_bank_txn_id="P2",
                amount_minor=30_000, customer_number=customer, at=AT)
    book.payout(bank_txn_id="T1", reference="payout1", amount_minor=50_000,
                beneficiary_name="Tea Supplier Ltd", beneficiary_account="6222020200112233",
                at=AT)
    book.charge(1_500, description="ACCOUNT MAINTENANCE FEE", on=DAY)
    return book, {"P1": "att1", "P2": "att2", "P3": "att3"}


def profile(account: str) -> CsvProfile:
    columns = CSV_PROFILE_COLUMNS
    return CsvProfile(
        name="smbank-export", account=account, date_column=columns["date_column"],
        date_format=columns["date_format"], debit_column=columns["debit_column"],
        credit_column=columns["credit_column"], balance_column=columns["balance_column"],
        currency_column=columns["currency_column"],
        reference_column=columns["reference_column"],
        end_to_end_id_column=columns["end_to_end_id_column"],
        counterparty_name_column=columns["counterparty_name_column"],
        description_columns=("摘要", "附言"),
    )


@pytest.mark.parametrize("format", FORMATS)
def test_a_day_in_every_format_parses_and_adds_up(format: str) -> None:
    book, _ = book_of_a_day()
    name, data = render(day_statement(book, DAY, bank_name="SM Bank"), format)
    [statement] = parse_statement(
        data, source_name=name,
        profile=profile(book.merchant_account) if format == "csv" else None)
    fees = sum((12_345 * 60 + 5_000) // 10_000 for _ in [0]) + 600 + 6  # 74 + 600 + 6
    assert fees == 680
    opening = 500_000 + 7_000 - 42  # yesterday's capture less its fee (42.0 -> 42)
    assert statement.opening is not None and statement.closing is not None
    assert statement.opening.amount == cny(opening)
    lines = {line.bank_reference: line for line in statement.lines}
    batch = lines[f"STL{DAY:%Y%m%d}SMB"]
    assert batch.amount == cny(113_344 - fees)
    refund, payout, charge = lines["R1"], lines["T1"], next(
        line for line in statement.lines if line.amount == -cny(1_500))
    assert refund.amount == -cny(30_000)
    assert payout.amount == -cny(50_000)
    # BAI2 has no end-to-end field: the payout id travels as the customer reference
    assert (payout.end_to_end_id or payout.customer_reference) == "payout1"
    assert charge.bank_reference and charge.bank_reference.startswith("CHG")
    assert statement.closing.amount == cny(book.merchant_balance())
    assert statement.opening.amount + statement.lines_total == statement.closing.amount
    if format in ("camt.053", "csv"):
        assert refund.end_to_end_id == "ref1"
    if format == "camt.053":
        assert batch.batch is not None
        assert batch.batch.item_count == 3 and batch.batch.gross_amount == cny(113_344)
        assert batch.batch.fees == cny(fees)
        assert {"P1", "P2", "P3"} <= set(batch.batch.item_references)
    else:
        assert all(ref in batch.description for ref in ("P1", "P2", "P3"))


def test_a_day_without_movements_is_a_balanced_empty_statement() -> None:
    book, _ = book_of_a_day()
    quiet = DAY + dt.timedelta(days=3)
    for format in ("camt.053", "mt940", "bai2"):  # a CSV export of no rows states nothing
        name, data = render(day_statement(book, quiet, bank_name="SM Bank"), format)
        [statement] = parse_statement(data, source_name=name)
        assert statement.lines == ()
        assert statement.opening is not None and statement.closing is not None
        assert statement.opening.amount == statement.closing.amount == cny(
            book.merchant_balance())


# ---------------------------------------------------------------------------- end to end

pytestmark_e2e = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fleet() -> AsyncIterator[SandboxFleet]:
    settings = SandboxSettings(retry_delays=(0.02,), opening_balance_minor=1_000_000)
    async with SandboxFleet.start(settings=settings, business_day=DAY) as started:
        yield started


@pytestmark_e2e
@pytest.mark.parametrize("code", ["unionpay", "restbank", "smbank"])
async def test_statement_of_real_sandbox_traffic(fleet: SandboxFleet, code: str) -> None:
    adapter = fleet.adapter(code)
    bank = fleet.bank(code)
    paid: dict[str, str] = {}
    for amount in ("150.00", "49.90"):
        order = PaymentOrder(attempt_id=uuid.uuid4().hex, amount=Money(amount, "CNY"),
                             description="order", return_url="http://127.0.0.1:9/r",
                             notify_url="http://127.0.0.1:9/notify",
                             created_at=dt.datetime.now(dt.UTC))
        assert (await bank.customer_pays(await adapter.create_payment(order))).paid
        status = await adapter.query_payment(BankCall.of(order))
        assert status.outcome is BankOutcome.SUCCEEDED and status.bank_txn_id
        paid[status.bank_txn_id] = order.attempt_id
    first_txn, first_attempt = next(iter(paid.items()))
    refund = await adapter.refund(RefundOrder(
        refund_id=uuid.uuid4().hex, attempt_id=first_attempt, original_bank_txn_id=first_txn,
        amount=Money("20.00", "CNY"), reason="partial", notify_url="http://127.0.0.1:9/n",
        created_at=dt.datetime.now(dt.UTC)))
    payout_id = uuid.uuid4().hex
    await adapter.payout(PayoutOrder(payout_id=payout_id,
                                     beneficiary=Beneficiary("Supplier", "6222020200112233"),
                                     amount=Money("100.00", "CNY"), description="settlement",
                                     created_at=dt.datetime.now(dt.UTC)))
    fleet.add_bank_charge(code, 250, day=DAY)
    name, data = fleet.statement_file(code, DAY)
    [statement] = parse_statement(data, source_name=name)
    assert statement.source_format == bank.statement_format
    assert statement.account == bank.book.merchant_account
    _check(statement, bank.book.merchant_balance())
    [batch] = [line for line in statement.lines if line.is_credit]
    gross = 19_990
    fee = sum(m.fee_minor for m in bank.book.by_kind(MovementKind.CAPTURE))
    assert batch.amount == cny(gross - fee)
    refs = set(batch.batch.item_references) if batch.batch else set()
    for txn in paid:
        assert txn in refs or txn in batch.description
    debits = {line.bank_reference: line for line in statement.lines if not line.is_credit}
    assert refund.bank_txn_id in debits and debits[refund.bank_txn_id].amount == -cny(2_000)
    [payout_line] = [line for line in statement.lines
                     if payout_id in (line.end_to_end_id, line.customer_reference)]
    assert payout_line.amount == -cny(10_000)
    assert any(line.amount == -cny(250) for line in statement.lines)


def _check(statement: Statement, closing_minor: int) -> None:
    assert statement.opening is not None and statement.closing is not None
    assert statement.closing.amount == cny(closing_minor)
    assert statement.opening.amount + statement.lines_total == statement.closing.amount
