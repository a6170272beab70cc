"""A person resolves an exception: by matching it by hand, by an adjustment entry (posted
to the ledger, linked to the line or item), or by writing it off within the tolerance.

Every resolution needs who and why; each leaves a `recon_audit` row, and whatever it
posts is a journal entry of kind `recon.*` whose metadata names the exception.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from reconciliation.config import BankAccount, get_bank_account
from reconciliation.engine import apply_proposals, close_exceptions, set_item_status
from reconciliation.errors import ExceptionNotOpen, InvalidResolution
from reconciliation.exceptions import ExceptionRecord, get_exception
from reconciliation.items import Item, ItemKey, load_items
from reconciliation.matching import Line, Proposal, line_from_row
from reconciliation.schema import (
    audit,
    bank_accounts,
    match_items,
    match_lines,
    matches,
    statement_lines,
)


async def record_audit(conn: AsyncConnection, *, actor: str, action: str, reason: str,
                       bank: BankAccount | None = None, exception_id: int | None = None,
                       match_id: uuid.UUID | None = None,
                       details: dict[str, Any] | None = None) -> None:
    await conn.execute(audit.insert().values(
        at=dt.datetime.now(dt.UTC), actor=actor, action=action,
        bank_account_id=bank.id if bank else None, exception_id=exception_id,
        match_id=match_id, reason=reason, details=details or {}))


def _require(actor: str, reason: str) -> None:
    if not actor.strip():
        raise InvalidResolution("a resolution needs the name of the person who made it")
    if not reason.strip():
        raise InvalidResolution("a resolution needs a reason")


async def _open_exception(conn: AsyncConnection, exception_id: int) -> ExceptionRecord:
    record = await get_exception(conn, exception_id)
    if record is None or record.status != "open":
        state = "does not exist" if record is None else f"is {record.status}"
        raise ExceptionNotOpen(f"exception {exception_id} {state}")
    return record


async def _open_lines(conn: AsyncConnection, bank: BankAccount, ids: Sequence[int]) -> list[Line]:
    rows = (await conn.execute(sa.select(statement_lines).where(
        statement_lines.c.id.in_(list(ids))))).all()
    by_id = {r.id: r for r in rows}
    lines = []
    for line_id in ids:
        row = by_id.get(line_id)
        if row is None or row.bank_account_id != bank.id:
            raise InvalidResolution(f"statement line {line_id} is not a line of {bank.code}")
        if row.status != "open":
            raise InvalidResolution(f"statement line {line_id} is already {row.status}")
        lines.append(line_from_row(row))
    return lines


async def _open_items(conn: AsyncConnection, bank: BankAccount, keys: Sequence[ItemKey]) -> list[Item]:
    loaded = {item.key: (item, status) for item, status in await load_items(conn, keys)}
    items = []
    for key in keys:
        if key not in loaded or key[0] not in bank.item_account_ids:
            raise InvalidResolution(f"book item {key[0]}:{key[1]} is not an item of {bank.code}")
        item, status = loaded[key]
        if status != "open":
            raise InvalidResolution(f"book item {key[0]}:{key[1]} is already {status}")
        items.append(item)
    return items


def parse_item_key(text: str) -> ItemKey:
    """`12:345` -> (account id 12, account sequence 345)."""
    try:
        account_id, seq = text.split(":")
        return int(account_id), int(seq)
    except ValueError:
        raise InvalidResolution(f"{text!r} is not a book item (ACCOUNT_ID:SEQ)") from None


async def match_manually(
    conn: AsyncConnection, bank: BankAccount, *, line_ids: Sequence[int],
    item_keys: Sequence[ItemKey], actor: str, reason: str, exception_id: int | None = None,
) -> uuid.UUID:
    """Match lines with items a person chose. Amounts must agree; a difference within the
    bank account's tolerance is written off to its differences account."""
    _require(actor, reason)
    if not line_ids or not item_keys:
        raise InvalidResolution("a manual match needs at least one line and one book item")
    lines = await _open_lines(conn, bank, line_ids)
    items = await _open_items(conn, bank, item_keys)
    difference = sum(i.amount for i in items) - sum(line.amount for line in lines)
    if abs(difference) > bank.config.tolerance_minor:
        raise InvalidResolution(
            f"lines and items differ by {ledger.from_minor(difference, bank.currency)}, more "
            f"than the tolerance {ledger.from_minor(bank.config.tolerance_minor, bank.currency)}; "
            f"post an adjustment for the difference instead")
    proposal = Proposal("manual", lines, items, difference=difference, reason=reason)
    [match_id] = await apply_proposals(conn, bank, [proposal], actor=actor,
                                       rule_override="manual", reason=reason)
    await record_audit(conn, actor=actor, action="manual_match", reason=reason, bank=bank,
                       exception_id=exception_id, match_id=match_id,
                       details={"line_ids": list(line_ids),
                                "items": [f"{a}:{s}" for a, s in item_keys],
                                "difference_minor": difference})
    return match_id


#: what an adjustment may be posted against: the income statement — a fee, interest or an
#: exchange difference the books did not know. A supplier's payable, a borrower's loan, a
#: customer's balance, another bank or clearing account moves through its own domain (a
#: match, a refund, a settlement), never by one person's adjustment: a statement line
#: "adjusted" onto a supplier's payable would be paid out by the next settlement run.
ADJUSTABLE_TYPES = (ledger.AccountType.INCOME, ledger.AccountType.EXPENSE)


async def _post_against(conn: AsyncConnection, bank: BankAccount, record: ExceptionRecord,
                        counter_account: str, *, rule: str, actor: str, reason: str) -> uuid.UUID:
    """Explain the exception with an entry against `counter_account`."""
    counter = await ledger.get_account(conn, counter_account)
    if rule == "adjustment" and counter.type not in ADJUSTABLE_TYPES:
        raise InvalidResolution(
            f"{counter_account} is a{'n' if counter.type.value[0] in 'aeiou' else ''} "
            f"{counter.type.value} account: an adjustment explains a bank difference against "
            f"income or expense (a fee, interest, an exchange difference); money owed to or by "
            f"a supplier, borrower or customer moves by a match, a refund or a settlement")
    if counter.currency != bank.currency:
        raise InvalidResolution(f"{counter_account} is kept in {counter.currency}, "
                                f"the bank account in {bank.currency}")
    if record.kind == "statement_line":
        assert record.line_id is not None
        [line] = await _open_lines(conn, bank, [record.line_id])
        proposal = Proposal(rule, [line], [], reason=reason)
        legs = {bank.config.bank_ledger_account: line.amount}
        day = line.booking_date
    else:
        assert record.item_key is not None
        [item] = await _open_items(conn, bank, [record.item_key])
        proposal = Proposal(rule, [], [item], reason=reason)
        codes = {bank.bank_ledger_id: bank.config.bank_ledger_account,
                 bank.clearing_id: bank.config.clearing_account,
                 bank.payout_clearing_id: bank.config.payout_clearing_account}
        legs = {codes[item.account_id]: -item.amount}
        day = item.effective_date
    [(code, amount)] = legs.items()
    if code == counter_account:
        raise InvalidResolution(f"the counter account cannot be {code} itself")
    legs[counter_account] = -amount
    match_id = uuid.uuid4()
    kind = "recon.write_off" if rule == "write_off" else "recon.adjustment"
    postings = [ledger.Posting(c, debit=ledger.from_minor(a, bank.currency)) if a > 0
                else ledger.Posting(c, credit=ledger.from_minor(-a, bank.currency))
                for c, a in sorted(legs.items())]
    entry = await ledger.post(conn, ledger.EntryRequest(
        idempotency_key=f"recon:{bank.code}:{rule}:{match_id}", kind=kind, postings=postings,
        effective_date=day, description=f"{bank.code}: exception {record.id}: {reason}"[:500],
        external_ref=record.reference,
        metadata={"bank": bank.code, "exception_id": record.id, "actor": actor,
                  "line_id": record.line_id}))
    await _record_resolution(conn, bank, proposal, match_id, entry.id, rule, actor, reason)
    return match_id


async def _record_resolution(conn: AsyncConnection, bank: BankAccount, proposal: Proposal,
                             match_id: uuid.UUID, entry_id: uuid.UUID, rule: str, actor: str,
                             reason: str) -> None:
    now = dt.datetime.now(dt.UTC)
    await conn.execute(matches.insert().values(
        id=match_id, bank_account_id=bank.id, rule=rule, fee_minor=0, difference_minor=0,
        score=100, entry_id=entry_id, created_at=now, created_by=actor, reason=reason))
    for line in proposal.lines:
        await conn.execute(match_lines.insert().values(match_id=match_id, line_id=line.id))
        await conn.execute(statement_lines.update().where(statement_lines.c.id == line.id)
                           .values(status="resolved"))
    for item in proposal.items:
        await conn.execute(match_items.insert().values(
            match_id=match_id, account_id=item.account_id, account_seq=item.account_seq))
    await set_item_status(conn, proposal.items, "resolved")
    await close_exceptions(conn, [line.id for line in proposal.lines], proposal.items,
                           resolution=rule, actor=actor, reason=reason, now=now)


async def post_adjustment(conn: AsyncConnection, exception_id: int, *, counter_account: str,
                          actor: str, reason: str) -> uuid.UUID:
    """Explain an exception with an adjustment entry against `counter_account` (e.g. a
    bank fee the books did not know: `6602.expense.bank_fees`)."""
    _require(actor, reason)
    record = await _open_exception(conn, exception_id)
    bank = await _bank_of(conn, record)
    match_id = await _post_against(conn, bank, record, counter_account, rule="adjustment",
                                   actor=actor, reason=reason)
    await record_audit(conn, actor=actor, action="adjustment", reason=reason, bank=bank,
                       exception_id=exception_id, match_id=match_id,
                       details={"counter_account": counter_account,
                                "amount_minor": record.amount_minor})
    return match_id


async def write_off(conn: AsyncConnection, exception_id: int, *, actor: str, reason: str) -> uuid.UUID:
    """Write an exception off to the differences account; only within the tolerance."""
    _require(actor, reason)
    record = await _open_exception(conn, exception_id)
    bank = await _bank_of(conn, record)
    if abs(record.amount_minor) > bank.config.tolerance_minor:
        raise InvalidResolution(
            f"exception {exception_id} is {ledger.from_minor(record.amount_minor, bank.currency)}"
            f", above the write-off tolerance "
            f"{ledger.from_minor(bank.config.tolerance_minor, bank.currency)} of {bank.code}; "
            f"match it or post an adjustment")
    match_id = await _post_against(conn, bank, record, bank.config.differences_account,
                                   rule="write_off", actor=actor, reason=reason)
    await record_audit(conn, actor=actor, action="write_off", reason=reason, bank=bank,
                       exception_id=exception_id, match_id=match_id,
                       details={"amount_minor": record.amount_minor})
    return match_id


async def resolve_by_match(conn: AsyncConnection, exception_id: int, *, counterparts: Sequence[str],
                           actor: str, reason: str) -> uuid.UUID:
    """Resolve by matching the exception with `counterparts`: book items (`ACCOUNT:SEQ`)
    for a line, statement line ids for an item."""
    record = await _open_exception(conn, exception_id)
    bank = await _bank_of(conn, record, counterparts)
    if record.kind == "statement_line":
        assert record.line_id is not None
        return await match_manually(conn, bank, line_ids=[record.line_id],
                                    item_keys=[parse_item_key(c) for c in counterparts],
                                    actor=actor, reason=reason, exception_id=exception_id)
    assert record.item_key is not None
    try:
        line_ids = [int(c) for c in counterparts]
    except ValueError:
        raise InvalidResolution("a book item is matched with statement line ids") from None
    return await match_manually(conn, bank, line_ids=line_ids, item_keys=[record.item_key],
                                actor=actor, reason=reason, exception_id=exception_id)


async def _bank_of(conn: AsyncConnection, record: ExceptionRecord,
                   counterparts: Sequence[str] = ()) -> BankAccount:
    if record.bank_account_id is not None:
        return await get_bank_account(conn, record.bank_account_id)
    # an item on the shared payout clearing account: the bank of the line it matches
    for text in counterparts:
        if text.isdigit():
            owner = await conn.scalar(sa.select(statement_lines.c.bank_account_id)
                                      .where(statement_lines.c.id == int(text)))
            if owner is not None:
                return await get_bank_account(conn, int(owner))
    first = await conn.scalar(sa.select(sa.func.min(bank_accounts.c.id)))
    if first is None:
        raise InvalidResolution("no bank account is configured")
    return await get_bank_account(conn, int(first))


async def audit_trail(conn: AsyncConnection, *, exception_id: int | None = None,
                      bank: BankAccount | None = None) -> list[dict[str, Any]]:
    query = sa.select(audit).order_by(audit.c.id)
    if exception_id is not None:
        query = query.where(audit.c.exception_id == exception_id)
    if bank is not None:
        query = query.where(audit.c.bank_account_id == bank.id)
    return [dict(r._mapping) for r in await conn.execute(query)]
