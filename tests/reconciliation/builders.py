"""Statements and book activity for the storage and matching tests: camt.053.001.08 files
built from a few fields, and ledger entries posted the way the payment core posts them."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

from moneyed import Money

import ledger
import reconciliation

CNY = "CNY"
IBAN = "CN7710200000000000001234"
_counter = itertools.count(1)


def cny(minor: int) -> Money:
    return ledger.from_minor(minor, CNY)


@dataclass(frozen=True)
class L:
    """One statement line: amount in minor units, money in > 0."""

    amount: int
    day: dt.date
    e2e: str | None = None
    bank_ref: str | None = None
    description: str = ""
    value_day: dt.date | None = None
    batch_refs: tuple[str, ...] = ()
    batch_gross: int | None = None
    batch_fee: int | None = None
    batch_count: int | None = None


def _amount(minor: int) -> str:
    return f"{Decimal(abs(minor)).scaleb(-2):.2f}"


def _entry(line: L) -> str:
    side = "CRDT" if line.amount > 0 else "DBIT"
    refs = f"<AcctSvcrRef>{escape(line.bank_ref)}</AcctSvcrRef>" if line.bank_ref else ""
    details = ""
    if line.batch_refs or line.batch_gross is not None or line.batch_count is not None:
        btch = "<Btch>"
        if line.batch_count is not None:
            btch += f"<NbOfTxs>{line.batch_count}</NbOfTxs>"
        if line.batch_gross is not None:
            btch += f'<TtlAmt Ccy="CNY">{_amount(line.batch_gross)}</TtlAmt>'
        btch += "</Btch>"
        txs = "".join(
            f"<TxDtls><Refs><AcctSvcrRef>{escape(r)}</AcctSvcrRef></Refs></TxDtls>"
            for r in line.batch_refs)
        details = f"<NtryDtls>{btch}{txs}</NtryDtls>"
    elif line.e2e:
        details = (f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(line.e2e)}</EndToEndId>"
                   f"</Refs></TxDtls></NtryDtls>")
    charges = ""
    if line.batch_fee is not None:
        charges = (f'<Chrgs><TtlChrgsAndTaxAmt Ccy="CNY">{_amount(line.batch_fee)}'
                   f"</TtlChrgsAndTaxAmt></Chrgs>")
    value = line.value_day or line.day
    return (
        f'<Ntry><Amt Ccy="CNY">{_amount(line.amount)}</Amt><CdtDbtInd>{side}</CdtDbtInd>'
        f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{line.day}</Dt></BookgDt>"
        f"<ValDt><Dt>{value}</Dt></ValDt>{refs}"
        f"<BkTxCd><Prtry><Cd>X</Cd></Prtry></BkTxCd>{charges}{details}"
        f"<AddtlNtryInf>{escape(line.description)}</AddtlNtryInf></Ntry>"
    )


def camt053(lines: list[L], *, opening: int = 0, start: dt.date | None = None,
            end: dt.date | None = None, statement_id: str | None = None,
            currency: str = CNY, iban: str = IBAN, closing: int | None = None) -> bytes:
    days = [line.day for line in lines]
    start = start or min(days)
    end = end or max(days)
    closing = opening + sum(line.amount for line in lines) if closing is None else closing
    sid = statement_id or f"STMT-{start}-{end}-{next(_counter)}"

    def bal(code: str, minor: int, day: dt.date) -> str:
        side = "CRDT" if minor >= 0 else "DBIT"
        return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                f'<Amt Ccy="{currency}">{_amount(minor)}</Amt><CdtDbtInd>{side}</CdtDbtInd>'
                f"<Dt><Dt>{day}</Dt></Dt></Bal>")

    body = "".join(_entry(line) for line in lines)
    if currency != CNY:
        body = body.replace('Ccy="CNY"', f'Ccy="{currency}"')
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{sid}</MsgId><CreDtTm>{end}T23:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{sid}</Id><CreDtTm>{end}T23:00:00</CreDtTm>"
        f"<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>{currency}</Ccy></Acct>"
        f"{bal('OPBD', opening, start - dt.timedelta(days=1))}{bal('CLBD', closing, end)}"
        f"{body}</Stmt></BkToCstmrStmt></Document>"
    )
    return xml.encode()


async def setup_bank(conn, *, tolerance: int = 0, rules: reconciliation.MatchingRules | None = None,
                     code: str = "icbc") -> reconciliation.BankAccount:
    config = reconciliation.BankAccountConfig.for_bank(
        code, CNY, tolerance=cny(tolerance), bank_account_number=IBAN if code == "icbc" else None,
        rules=rules)
    bank = await reconciliation.configure_bank_account(conn, config)
    for spec in (
        ledger.AccountSpec("2202.payable.sup-1", "Supplier 1", ledger.AccountType.LIABILITY, CNY),
        ledger.AccountSpec("6001.income.commission", "Commission", ledger.AccountType.INCOME, CNY),
        ledger.AccountSpec("3001.equity.capital", "Capital", ledger.AccountType.EQUITY, CNY),
    ):
        await ledger.ensure_account(conn, spec)
    return bank


def capture(bank: str, txn: str, minor: int, day: dt.date) -> ledger.EntryRequest:
    """As the payment core books a capture: Dr clearing, Cr supplier, Cr commission."""
    fee = minor // 50
    return ledger.EntryRequest(
        idempotency_key=f"capture:{txn}", kind="payment.capture", effective_date=day,
        external_ref=txn, postings=[
            ledger.Posting(f"1102.clearing.{bank}", debit=cny(minor)),
            ledger.Posting("2202.payable.sup-1", credit=cny(minor - fee)),
            ledger.Posting("6001.income.commission", credit=cny(fee)),
        ] if fee else [
            ledger.Posting(f"1102.clearing.{bank}", debit=cny(minor)),
            ledger.Posting("2202.payable.sup-1", credit=cny(minor)),
        ])


def refund(bank: str, refund_id: str, minor: int, day: dt.date) -> ledger.EntryRequest:
    return ledger.EntryRequest(
        idempotency_key=f"refund:{refund_id}", kind="payment.refund", effective_date=day,
        external_ref=refund_id, postings=[
            ledger.Posting("2202.payable.sup-1", debit=cny(minor)),
            ledger.Posting(f"1102.clearing.{bank}", credit=cny(minor)),
        ])


def payout(payout_id: str, minor: int, day: dt.date,
           account: str = "1103.clearing.payout") -> ledger.EntryRequest:
    return ledger.EntryRequest(
        idempotency_key=f"payout:{payout_id}", kind="payout", effective_date=day,
        external_ref=payout_id, postings=[
            ledger.Posting("2202.payable.sup-1", debit=cny(minor)),
            ledger.Posting(account, credit=cny(minor)),
        ])


async def balance_of(conn, code: str) -> int:
    return (await ledger.balance(conn, code)).posted_net
