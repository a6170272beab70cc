"""Property: generate the books' activity and the statement the bank would print for it,
perturb the statement (drop lines, duplicate lines, shift dates, add fees), and the
engine reports exactly the perturbations — no more, no less — with the difference
between bank and books explained and the books still proving out."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger
import reconciliation
from tests.reconciliation.builders import L, camt053, capture, payout, refund

D0 = dt.date(2026, 11, 2)
_examples = itertools.count(1)

activity = st.lists(
    st.tuples(
        st.sampled_from(["capture", "capture", "refund", "payout"]),
        st.integers(min_value=1, max_value=5_000_000),  # minor units
        st.integers(min_value=0, max_value=2),  # booking day offset
        st.integers(min_value=0, max_value=1),  # days until the bank shows it
    ),
    min_size=1, max_size=14,
)


@st.composite
def scenario(draw: st.DrawFn) -> dict:
    moves = draw(activity)
    n = len(moves)
    dropped = draw(st.sets(st.integers(0, n - 1), max_size=n))
    duplicated = draw(st.sets(st.integers(0, n - 1), max_size=n)) - dropped
    shifted = draw(st.dictionaries(st.integers(0, n - 1), st.integers(-2, 2), max_size=n))
    fees = draw(st.lists(st.tuples(st.integers(1, 5_000), st.integers(0, 3)), max_size=3))
    return {"moves": moves, "dropped": dropped, "duplicated": duplicated, "shifted": shifted,
            "fees": fees}


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=scenario())
async def test_the_engine_reports_exactly_the_perturbations(db, case) -> None:
    code = f"p{next(_examples)}"
    payouts_account = f"1103.clearing.payout.{code}"
    books, lines, expect_items = [], [], Counter()
    expect_lines: Counter = Counter()
    for i, (kind, amount, offset, delay) in enumerate(case["moves"]):
        day = D0 + dt.timedelta(days=offset)
        ref = f"{kind[:3].upper()}-{code}-{i:04d}"
        if kind == "capture":
            books.append(capture(code, ref, amount, day))
            signed, item_amount = amount, amount
        elif kind == "refund":
            books.append(refund(code, ref, amount, day))
            signed, item_amount = -amount, -amount
        else:
            books.append(payout(ref, amount, day, account=payouts_account))
            signed, item_amount = -amount, -amount
        shown = day + dt.timedelta(days=delay + case["shifted"].get(i, 0))
        if i in case["dropped"]:
            expect_items[item_amount] += 1
            continue
        lines.append(L(signed, shown, ref, f"B-{i}"))
        if i in case["duplicated"]:
            lines.append(L(signed, shown, ref, f"B-{i}-AGAIN"))
            expect_lines[signed] += 1
    for j, (fee, offset) in enumerate(case["fees"]):
        lines.append(L(-fee, D0 + dt.timedelta(days=offset), None, f"FEE-{j}", "ACCOUNT FEE"))
        expect_lines[-fee] += 1
    if not lines:
        lines.append(L(-1, D0, None, "FEE-X", "ACCOUNT FEE"))
        expect_lines[-1] += 1
    lines.sort(key=lambda line: line.day)
    up_to = max(line.day for line in lines) + dt.timedelta(days=3)
    config = reconciliation.BankAccountConfig(
        code=code, currency="CNY", bank_ledger_account=f"1001.bank.{code}",
        clearing_account=f"1102.clearing.{code}", payout_clearing_account=payouts_account)
    async with db.begin() as conn:
        bank = await reconciliation.configure_bank_account(conn, config)
        for spec in (ledger.AccountSpec("2202.payable.sup-1", "S", ledger.AccountType.LIABILITY, "CNY"),
                     ledger.AccountSpec("6001.income.commission", "C", ledger.AccountType.INCOME,
                                        "CNY")):
            await ledger.ensure_account(conn, spec)
        await ledger.post_many(conn, books)
        await reconciliation.import_statement(conn, bank, camt053(lines, opening=1_000_000))
        result = await reconciliation.reconcile(conn, bank, up_to)
        queue = await reconciliation.list_exceptions(conn, bank)
        report = await reconciliation.build_report(conn, bank, up_to)
        verified = await ledger.verify(conn)
    got_lines = Counter(e.amount_minor for e in queue if e.kind == "statement_line")
    got_items = Counter(e.amount_minor for e in queue if e.kind == "book_item")
    assert got_lines == expect_lines
    assert got_items == expect_items
    assert result.matched_lines == len(lines) - sum(expect_lines.values())
    assert report.explained
    assert report.unmatched_lines_minor == sum(a * n for a, n in expect_lines.items())
    assert report.difference_minor == report.brought_forward_minor + report.unmatched_lines_minor
    assert verified.ok, verified.summary()
