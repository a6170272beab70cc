"""Files as banks really send them (#18): several accounts in one file, MT940 references
longer than the standard, refusals that say what and where, camt batches whose details
contradict their entry."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from moneyed import Money

import ledger
import reconciliation
from reconciliation import UnreadableStatement, parse_statement
from reconciliation.schema import statement_lines, statements
from tests.reconciliation.builders import capture, setup_bank
from tests.reconciliation.conftest import fixture_bytes

OFX_TWO = "ofx_bank_and_credit_card.ofx"
MT940_THREE = "mt940_three_accounts.sta"
GLS = "mt940_gls_long_references.sta"
D1 = dt.date(2026, 11, 21)


async def _bank(conn, code: str, currency: str, number: str | None) -> reconciliation.BankAccount:
    config = reconciliation.BankAccountConfig.for_bank(code, currency,
                                                       bank_account_number=number)
    return await reconciliation.configure_bank_account(conn, config)


async def _stored(conn) -> list[tuple[str, str, int]]:
    rows = await conn.execute(sa.select(statements.c.statement_ref, statements.c.currency,
                                        statements.c.line_count).order_by(statements.c.id))
    return [tuple(r) for r in rows]


# -- 2. several accounts in one file ------------------------------------------------------


async def test_ofx_bank_and_card_files_only_the_bank_statement(db) -> None:
    async with db.begin() as conn:
        bank = await _bank(conn, "chase", "USD", "000000987654321")
        result = await reconciliation.import_statement(conn, bank, fixture_bytes(OFX_TWO),
                                                       source_name=OFX_TWO)
        assert (result.statements, result.lines, result.new_lines) == (1, 4, 4)
        [card] = result.skipped
        assert (card.account, card.currency, card.lines) == ("4147202001234567", "USD", 3)
        assert await _stored(conn) == [("000000987654321:20261121-20261121", "USD", 4)]
        # the report's bank closing balance is the checking account's, not the card's
        report = await reconciliation.build_report(conn, bank, D1)
    assert report.bank_closing_minor == 3_012_550


async def test_mt940_of_three_accounts_imports_the_configured_one(db) -> None:
    async with db.begin() as conn:
        usd = await _bank(conn, "hsbc-usd", "USD", "004123456838")
        result = await reconciliation.import_statement(conn, usd, fixture_bytes(MT940_THREE))
        assert (result.statements, result.lines) == (1, 2)
        assert [(s.account, s.currency) for s in result.skipped] == [
            ("HSBCHKHHXXX/004123456001", "CNY"), ("HSBCHKHHXXX/004123456002", "CNY")]
        # the same file for another configured account takes that account's statement
        cny = await _bank(conn, "hsbc", "CNY", "HSBCHKHHXXX/004123456001")
        other = await reconciliation.import_statement(conn, cny, fixture_bytes(MT940_THREE))
        assert (other.already_imported, other.statements, other.lines) == (False, 1, 2)
        assert len(other.skipped) == 2
        assert await _stored(conn) == [("STMT20261121B/112/1", "USD", 2),
                                       ("STMT20261121A/326/1", "CNY", 2)]


async def test_a_file_with_no_statement_of_the_account_is_refused(db) -> None:
    async with db.begin() as conn:
        bank = await _bank(conn, "hsbc", "CNY", "004999999999")
    with pytest.raises(reconciliation.StatementForAnotherAccount,
                       match=r"no statement in the file is for account 004999999999.*"
                             r"HSBCHKHHXXX/004123456838 \(USD\)"):
        async with db.begin() as conn:
            await reconciliation.import_statement(conn, bank, fixture_bytes(MT940_THREE))
    async with db.connect() as conn:
        assert await _stored(conn) == []


async def test_several_accounts_without_a_configured_number_are_not_guessed(db) -> None:
    async with db.begin() as conn:
        bank = await _bank(conn, "chase", "USD", None)
    with pytest.raises(reconciliation.AmbiguousStatementFile,
                       match=r"2 accounts .*000000987654321 \(USD\), 4147202001234567 \(USD\).*"
                             r"paycore recon configure chase --currency USD --account-number"):
        async with db.begin() as conn:
            await reconciliation.import_statement(conn, bank, fixture_bytes(OFX_TWO))
    async with db.connect() as conn:
        assert await _stored(conn) == []


# -- 3. real exports slightly off the standard --------------------------------------------


def test_long_references_are_read_in_full_with_a_warning() -> None:
    [statement] = parse_statement(fixture_bytes(GLS))
    debit, credit, fee = statement.lines
    assert debit.customer_reference == "MNDT-2026-00012345-AT"
    assert debit.bank_reference == "2026112006391534000"
    assert credit.customer_reference == "RE-2026-11-04712-DE-ORDER"
    assert credit.counterparty_name == "Marktplatz Handels AG"
    assert credit.end_to_end_id == "RE-2026-11-04712-DE-ORDER"
    assert "Bestellung 4712" in credit.description
    assert fee.customer_reference is None and fee.bank_reference is None
    assert [line.amount for line in statement.lines] == [
        Money("-89.90", "EUR"), Money("2380.00", "EUR"), Money("-12.50", "EUR")]
    assert statement.warnings == (
        "line 5 (:61:): customer reference 'MNDT-2026-00012345-AT' is 21 characters, the "
        "standard allows 16; read in full",
        "line 5 (:61:): bank reference '2026112006391534000' is 19 characters, the standard "
        "allows 16; read in full",
        "line 8 (:61:): customer reference 'RE-2026-11-04712-DE-ORDER' is 25 characters, the "
        "standard allows 16; read in full",
        "line 8 (:61:): bank reference '2026112008120744000' is 19 characters, the standard "
        "allows 16; read in full",
    )


def test_a_long_reference_before_supplementary_details_no_longer_refuses_the_file() -> None:
    # the shape of the export: `:61:` with a 23-character reference, `//`, and a
    # supplementary line; the strict reading refused it, echoing the raw line
    data = fixture_bytes("mt940_hsbc_two_days.sta").replace(
        b"NMSCUP20261121//HK2611210002", b"NMSCUP20261121-SETTLE-BATCH//HK2611210002")
    first, _ = parse_statement(data)
    settlement = first.lines[1]
    assert settlement.customer_reference == "UP20261121-SETTLE-BATCH"
    assert settlement.bank_reference == "HK2611210002"
    assert "SETTLEMENT 42 ITEMS" in settlement.description
    assert settlement.amount == Money("12312.50", "CNY")
    assert first.warnings == ("line 9 (:61:): customer reference 'UP20261121-SETTLE-BATCH' "
                              "is 23 characters, the standard allows 16; read in full",)


def test_a_long_reference_does_not_lose_the_bank_reference() -> None:
    # the strict pattern read this line without complaint but cut the reference at 16
    # characters and pushed the bank reference into the description
    data = fixture_bytes("mt940_hsbc_two_days.sta").replace(
        b"NTRFPI-2026-000731//HK2611210001", b"NTRFPI-2026-000731-ORDER-77//HK2611210001")
    payment = parse_statement(data)[0].lines[0]
    assert payment.customer_reference == "PI-2026-000731-ORDER-77"
    assert payment.bank_reference == "HK2611210001"
    assert "HK2611210001" not in payment.description


def test_a_file_within_the_standard_has_no_warnings() -> None:
    assert all(not s.warnings for s in parse_statement(fixture_bytes("mt940_hsbc_two_days.sta")))


@pytest.mark.parametrize(("old", "new", "message"), [
    (b"2611221121C12312,50NMSC", b"2611221121X12312,50NMSC",
     r"line 9 \(:61:\): debit/credit mark: found 'X12312,50NMSCUP202', expected 2a: C, D, "
     r"RC or RD"),
    (b"2611221121C12312,50NMSC", b"2611221121C12312.50NMSC",
     r"line 9 \(:61:\): amount: found '12312.50NMSCUP2026', expected 15d: digits with a "
     r"comma as decimal mark"),
    (b"2611221121C12312,50NMSC", b"2613221121C12312,50NMSC",
     r"line 9 \(:61:\): value date: found '261322', expected 6!n: YYMMDD"),
    (b":60F:C261120CNY250000,00", b":60F:C261320CNY250000,00",
     r"line 5 \(:60F:\): date: found '261320', expected 6!n: YYMMDD"),
])
def test_a_refusal_names_field_line_and_expected_form(old: bytes, new: bytes,
                                                      message: str) -> None:
    data = fixture_bytes("mt940_hsbc_two_days.sta").replace(old, new, 1)
    with pytest.raises(UnreadableStatement, match=message):
        parse_statement(data)


def test_leniency_never_reaches_numbers() -> None:
    # a long reference is read leniently, an amount that breaks the balance is not
    data = fixture_bytes(GLS).replace(b"C2380,00NTRF", b"C2381,00NTRF")
    with pytest.raises(reconciliation.UnbalancedStatement, match="difference 1.00 EUR"):
        parse_statement(data)


async def test_the_warnings_are_stored_with_the_statement(db) -> None:
    async with db.begin() as conn:
        bank = await _bank(conn, "gls", "EUR", "4711815500")
        result = await reconciliation.import_statement(conn, bank, fixture_bytes(GLS))
        assert len(result.warnings) == 4
        stored = await conn.scalar(sa.select(statements.c.warnings))
        assert stored == list(result.warnings)
        # a file within the standard stores no warnings (NULL, not an empty list)
        hsbc = await _bank(conn, "hsbc", "CNY", "004123456001")
        await reconciliation.import_statement(conn, hsbc,
                                              fixture_bytes("mt940_hsbc_two_days.sta"))
        nulls = await conn.scalar(sa.select(sa.func.count()).select_from(statements)
                                  .where(statements.c.warnings.is_(None)))
        assert nulls == 2


# -- 5. a camt.054 batch whose details contradict its entry --------------------------------


def _camt054_batch(items: tuple[str, str], *, count: int = 2, total: str = "300.00",
                   net: str = "294.00", charges: str = "6.00") -> bytes:
    details = "".join(
        f"<TxDtls><Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>"
        f'<Amt Ccy="CNY">{amount}</Amt></TxDtls>'
        for ref, amount in zip(("CAP-1", "CAP-2"), items, strict=True))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.04">'
        "<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>NTF-1</MsgId>"
        "<CreDtTm>2026-11-21T14:00:00</CreDtTm></GrpHdr>"
        "<Ntfctn><Id>NTF-1</Id><CreDtTm>2026-11-21T14:00:00</CreDtTm>"
        "<Acct><Id><IBAN>CN7710200000000000001234</IBAN></Id><Ccy>CNY</Ccy></Acct>"
        f'<Ntry><Amt Ccy="CNY">{net}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
        "<BookgDt><Dt>2026-11-21</Dt></BookgDt><ValDt><Dt>2026-11-21</Dt></ValDt>"
        "<AcctSvcrRef>STL-1</AcctSvcrRef>"
        f'<Chrgs><TtlChrgsAndTaxAmt Ccy="CNY">{charges}</TtlChrgsAndTaxAmt></Chrgs>'
        f"<NtryDtls><Btch><NbOfTxs>{count}</NbOfTxs>"
        f'<TtlAmt Ccy="CNY">{total}</TtlAmt><CdtDbtInd>CRDT</CdtDbtInd></Btch>'
        f"{details}</NtryDtls></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"items": ("100.00", "150.00")}, "the 2 items add up to 250.00 CNY, the batch total "
                                      "(TtlAmt) is 300.00 CNY"),
    ({"items": ("100.00", "200.00"), "count": 3}, "Btch/NbOfTxs says 3 transactions, 2 TxDtls"),
    ({"items": ("100.00", "200.00"), "charges": "7.00"},
     "gross 300.00 CNY less charges 7.00 CNY is not the entry's 294.00 CNY"),
])
def test_contradictions_are_named_on_the_line(kwargs: dict, said: str) -> None:
    [notification] = parse_statement(_camt054_batch(**kwargs))
    batch = notification.lines[0].batch
    assert batch is not None
    assert any(said in c for c in batch.contradictions), batch.contradictions


async def _reconcile_batch(db, data: bytes) -> tuple[reconciliation.ReconcileResult, object]:
    async with db.begin() as conn:
        bank = await setup_bank(conn)
        await ledger.post_many(conn, [capture("icbc", "CAP-1", 10_000, D1),
                                      capture("icbc", "CAP-2", 20_000, D1)])
        await reconciliation.import_statement(conn, bank, data)
        result = await reconciliation.reconcile(conn, bank, D1)
        flag = await conn.scalar(sa.select(statement_lines.c.review_flag))
    return result, flag


async def test_a_consistent_batch_is_matched_net_of_fees(db) -> None:
    result, flag = await _reconcile_batch(db, _camt054_batch(("100.00", "200.00")))
    assert flag is None
    assert result.by_rule == {"batch": 1} and result.fees_minor == 600


async def test_a_contradicted_batch_waits_for_a_person(db) -> None:
    result, flag = await _reconcile_batch(db, _camt054_batch(("100.00", "150.00")))
    assert isinstance(flag, str) and "add up to 250.00 CNY" in flag
    assert result.by_rule == {} and result.fees_minor == 0
    async with db.connect() as conn:
        [line] = [e for e in await reconciliation.list_exceptions(conn)
                  if e.kind == "statement_line"]
    assert line.description.startswith("REVIEW: batch details contradict the entry")

