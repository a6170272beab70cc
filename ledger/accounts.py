"""The chart of accounts: open, look up, close."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import chain
from ledger.books import LockedAccounts
from ledger.entries import utcnow
from ledger.errors import AccountExists, AccountNotEmpty, InvalidRequest, UnknownAccount
from ledger.money import currency as lookup_currency
from ledger.schema import account_balances, accounts
from ledger.types import (
    Account,
    AccountRef,
    AccountSpec,
    AccountStatus,
    AccountType,
    BalanceLimit,
)

log = structlog.get_logger("ledger")


def _row_to_account(row: Any) -> Account:
    return Account(
        id=row.id, code=row.code, name=row.name, type=AccountType(row.type),
        currency=row.currency,
        balance_limit=BalanceLimit(row.balance_limit) if row.balance_limit else None,
        owner_ref=row.owner_ref, status=AccountStatus(row.status), metadata=row.metadata,
        opened_at=row.opened_at,
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
    """Open an account, or return it when one with the same code and definition exists."""
    existing = await find_account(conn, spec.code)
    if existing is None:
        return await _insert(conn, spec)
    if not _same_definition(existing, spec):
        raise AccountExists(spec.code)
    return existing


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
    code = lookup_currency(spec.currency).code
    account_id = (await conn.execute(
        accounts.insert().values(
            code=spec.code, name=spec.name, type=kind.value, currency=code,
            balance_limit=limit.value if limit else None, owner_ref=spec.owner_ref,
            status=AccountStatus.OPEN.value, metadata=dict(spec.metadata), opened_at=utcnow(),
        ).returning(accounts.c.id)
    )).scalar_one()
    await conn.execute(account_balances.insert().values(
        account_id=account_id, balance_limit=limit.value if limit else None,
        head_hash=chain.GENESIS,
    ))
    log.info("account.opened", account_id=account_id, account_code=spec.code, currency=code)
    return await get_account(conn, account_id)


async def close_account(conn: AsyncConnection, ref: AccountRef) -> Account:
    """Close an account with nothing posted or pending on it; it then refuses postings."""
    books = await LockedAccounts.lock(conn, [ref])
    state = books[ref]
    if state.posted_net:
        raise AccountNotEmpty(state.code, "its posted balance is not zero")
    if state.pending_debits or state.pending_credits:
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
