"""The chart of accounts: open, look up, close."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import chain, store
from ledger.books import LockedAccounts
from ledger.entries import utcnow
from ledger.errors import AccountExists, AccountNotEmpty, InvalidRequest, UnknownAccount
from ledger.money import currency as lookup_currency
from ledger.schema import LANE_STRIDE, account_balances, accounts
from ledger.types import (
    Account,
    AccountRef,
    AccountSpec,
    AccountStatus,
    AccountType,
    BalanceLimit,
)

log = structlog.get_logger("ledger")

#: the most lanes an account may have (each is a balance row every balance read sums)
MAX_LANES = 256


def _row_to_account(row: Any) -> Account:
    return Account(
        id=row.id, code=row.code, name=row.name, type=AccountType(row.type),
        currency=row.currency,
        balance_limit=BalanceLimit(row.balance_limit) if row.balance_limit else None,
        owner_ref=row.owner_ref, status=AccountStatus(row.status), metadata=row.metadata,
        opened_at=row.opened_at, lanes=row.lanes,
    )


def _same_definition(account: Account, spec: AccountSpec) -> bool:
    return (account.name, account.type, account.currency, account.balance_limit,
            account.owner_ref, dict(account.metadata)) == (
        spec.name, AccountType(spec.type), spec.currency.upper(),
        BalanceLimit(spec.balance_limit) if spec.balance_limit else None, spec.owner_ref,
        dict(spec.metadata))


async def open_account(conn: AsyncConnection, spec: AccountSpec) -> Account:
    """Open an account; a code already in use raises `AccountExists`."""
    existing = await find_account(conn, spec.code)
    if existing is not None:
        raise AccountExists(spec.code)
    return await _insert(conn, spec)


async def ensure_account(conn: AsyncConnection, spec: AccountSpec) -> Account:
    """Open an account, or return it when one with the same code and definition exists
    (with at least the spec's lanes: an account asked for with more gets them added)."""
    existing = await find_account(conn, spec.code)
    if existing is None:
        return await _insert(conn, spec)
    if not _same_definition(existing, spec):
        raise AccountExists(spec.code)
    if spec.lanes > existing.lanes:
        return await add_lanes(conn, existing.id, spec.lanes)
    return existing


def _check_lanes(code: str, lanes: int, limit: BalanceLimit | None) -> None:
    if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= MAX_LANES:
        raise InvalidRequest(f"account {code!r}: lanes must be a whole number from 1 to "
                             f"{MAX_LANES}, got {lanes!r}")
    if limit is not None and lanes != 1:
        raise InvalidRequest(
            f"account {code!r} has a balance limit ({limit.value}), so it keeps one lane: "
            "a limit is checked against one running balance; open it without a limit to "
            "split it into lanes")


async def add_lanes(conn: AsyncConnection, ref: AccountRef, lanes: int) -> Account:
    """Raise an unlimited account's lanes to `lanes`: that many writers can then post to it
    at once, each to its own balance row, sequence and chain. Lanes are added, never
    removed (their postings keep their numbers and chains); asking for fewer is refused,
    as many as it has is a no-op. Writers pick the new lanes up when this commits."""
    account = await get_account(conn, ref)
    _check_lanes(account.code, lanes, account.balance_limit)
    if lanes < account.lanes:
        raise InvalidRequest(f"account {account.code!r} has {account.lanes} lanes; lanes "
                             "are added, never removed (their postings keep their chains)")
    if lanes == account.lanes:
        return account
    # the accounts row first: two sessions adding lanes to one account queue here
    raised = await conn.execute(
        accounts.update().where(accounts.c.id == account.id, accounts.c.lanes == account.lanes)
        .values(lanes=lanes))
    if raised.rowcount != 1:
        raise InvalidRequest(f"account {account.code!r}: its lanes changed while adding "
                             "lanes; ask again")
    await conn.execute(account_balances.insert(), [
        {"account_id": account.id, "lane": lane, "balance_limit": None,
         "seq": lane * LANE_STRIDE, "head_hash": chain.GENESIS}
        for lane in range(account.lanes, lanes)])
    log.info("account.lanes_added", account_id=account.id, account_code=account.code,
             lanes=lanes)
    return await get_account(conn, account.id)


async def _insert(conn: AsyncConnection, spec: AccountSpec) -> Account:
    if not spec.code or not spec.name:
        raise InvalidRequest("an account needs a code and a name")
    try:
        kind = AccountType(spec.type)
    except ValueError:
        raise InvalidRequest(
            f"account type {spec.type!r} is not one of {', '.join(t.value for t in AccountType)}"
        ) from None
    limit = BalanceLimit(spec.balance_limit) if spec.balance_limit else None
    _check_lanes(spec.code, spec.lanes, limit)
    code = lookup_currency(spec.currency).code
    account_id = (await conn.execute(
        accounts.insert().values(
            code=spec.code, name=spec.name, type=kind.value, currency=code,
            balance_limit=limit.value if limit else None, owner_ref=spec.owner_ref,
            status=AccountStatus.OPEN.value, metadata=dict(spec.metadata), opened_at=utcnow(),
            lanes=spec.lanes,
        ).returning(accounts.c.id)
    )).scalar_one()
    await conn.execute(account_balances.insert(), [
        {"account_id": account_id, "lane": lane, "balance_limit": limit.value if limit else None,
         "seq": lane * LANE_STRIDE, "head_hash": chain.GENESIS}
        for lane in range(spec.lanes)])
    log.info("account.opened", account_id=account_id, account_code=spec.code, currency=code,
             lanes=spec.lanes)
    return await get_account(conn, account_id)


async def close_account(conn: AsyncConnection, ref: AccountRef) -> Account:
    """Close an account with nothing posted or pending on it (in all its lanes, each
    locked); it then refuses postings."""
    books = await LockedAccounts.lock(conn, [ref], lane_zero=True)
    state = books[ref]
    lanes = await store.lock_all_lanes(conn, state.id)
    if sum(r.posted_debits - r.posted_credits for r in lanes):
        raise AccountNotEmpty(state.code, "its posted balance is not zero")
    if any(r.pending_debits or r.pending_credits for r in lanes):
        raise AccountNotEmpty(state.code, "it has pending holds")
    await conn.execute(accounts.update().where(accounts.c.id == state.id)
                       .values(status=AccountStatus.CLOSED.value))
    log.info("account.closed", account_id=state.id, account_code=state.code)
    return await get_account(conn, state.id)


async def find_account(conn: AsyncConnection, ref: AccountRef) -> Account | None:
    column = accounts.c.id if isinstance(ref, int) else accounts.c.code
    row = (await conn.execute(sa.select(accounts).where(column == ref))).first()
    return _row_to_account(row) if row is not None else None


async def get_account(conn: AsyncConnection, ref: AccountRef) -> Account:
    account = await find_account(conn, ref)
    if account is None:
        raise UnknownAccount([ref])
    return account


async def list_accounts(
    conn: AsyncConnection, *, owner_ref: str | None = None, code_prefix: str | None = None
) -> Sequence[Account]:
    query = sa.select(accounts).order_by(accounts.c.code)
    if owner_ref is not None:
        query = query.where(accounts.c.owner_ref == owner_ref)
    if code_prefix is not None:
        query = query.where(accounts.c.code.startswith(code_prefix, autoescape=True))
    return [_row_to_account(r) for r in await conn.execute(query)]
