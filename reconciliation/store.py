"""Storing statements: read and check the whole file first, then write it in the caller's
transaction, so a refused file leaves nothing behind.

Idempotent twice over: a file already imported for the account (same SHA-256) adds
nothing, and a line already known from an overlapping statement (same line identity) is
not stored again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from reconciliation.bulk import insert_rows
from reconciliation.config import BankAccount
from reconciliation.errors import StatementForAnotherAccount
from reconciliation.parsers import CsvProfile
from reconciliation.reading import parse_statement
from reconciliation.schema import statement_lines, statements
from reconciliation.selection import (
    Selection,
    SkippedStatement,
    accounts_match,
    select_for_account,
)
from reconciliation.statement import Statement, StatementLine, file_hash
from reconciliation.validation import validate_statement

log = structlog.get_logger("reconciliation")

#: lines written per statement: large enough to amortise the round trip, small enough
#: to report progress on a million-line file
CHUNK = 5_000
ANALYZE_AFTER = 5_000


@dataclass(frozen=True)
class ImportResult:
    source_name: str
    file_hash: str
    #: True when this very file had been imported for the account before
    already_imported: bool
    statements: int
    lines: int
    new_lines: int
    #: the file's statements of other accounts, left out
    skipped: tuple[SkippedStatement, ...] = ()
    #: what was read leniently, per statement imported (see `Statement.warnings`)
    warnings: tuple[str, ...] = ()

    @property
    def known_lines(self) -> int:
        return self.lines - self.new_lines


def check_account(bank: BankAccount, statement: Statement) -> None:
    expected = bank.config.bank_account_number
    if expected and statement.account and not accounts_match(expected, statement.account):
        raise StatementForAnotherAccount(
            f"statement {statement.statement_id} is for account {statement.account}, "
            f"not {expected} ({bank.code})"
        )


def line_row(bank_account_id: int, statement_id: int, line: StatementLine) -> dict[str, Any]:
    batch = None
    if line.batch is not None:
        b = line.batch
        batch = {
            "item_count": b.item_count,
            "gross_minor": ledger.to_minor(b.gross_amount) if b.gross_amount is not None else None,
            "fees_minor": ledger.to_minor(b.fees) if b.fees is not None else None,
            "batch_id": b.batch_id,
            "item_references": list(b.item_references),
            "contradictions": list(b.contradictions),
        }
    return {
        "bank_account_id": bank_account_id, "statement_id": statement_id,
        "line_identity": line.line_identity, "amount_minor": ledger.to_minor(line.amount),
        "currency": line.amount.currency.code, "value_date": line.value_date,
        "booking_date": line.booking_date, "bank_reference": line.bank_reference,
        "end_to_end_id": line.end_to_end_id, "customer_reference": line.customer_reference,
        "counterparty_name": line.counterparty_name,
        "counterparty_account": line.counterparty_account, "description": line.description,
        "transaction_code": line.transaction_code, "reversal": line.reversal, "batch": batch,
        "status": "open", "review_flag": _review_flag(line),
    }


def _review_flag(line: StatementLine) -> str | None:
    if line.batch is None or not line.batch.contradictions:
        return None
    return "batch details contradict the entry: " + "; ".join(line.batch.contradictions)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def store_statements(
    conn: AsyncConnection,
    bank: BankAccount,
    parsed: Sequence[Statement],
    *,
    data_hash: str,
    source_name: str,
    actor: str = "system",
    progress: Callable[[int], None] | None = None,
    skipped: Sequence[SkippedStatement] = (),
) -> ImportResult:
    """Write already-validated statements of one file; see `import_statement`.
    `skipped` (the file's statements of other accounts) is only reported back."""
    total = sum(len(s.lines) for s in parsed)
    warnings = tuple(w for s in parsed for w in s.warnings)
    skipped = tuple(skipped)
    seen = await conn.scalar(
        sa.select(sa.func.count()).select_from(statements)
        .where(statements.c.bank_account_id == bank.id, statements.c.file_hash == data_hash)
    )
    if seen:
        log.info("statement.reimport_ignored", bank=bank.code, source=source_name)
        if progress:
            progress(total)
        return ImportResult(source_name, data_hash, True, len(parsed), total, 0, skipped,
                            warnings)
    for statement in parsed:
        check_account(bank, statement)
    now = dt.datetime.now(dt.UTC)
    new_lines = 0
    for statement in parsed:
        dates = [line.booking_date for line in statement.lines]
        opening, closing = statement.opening, statement.closing
        statement_id = await conn.scalar(statements.insert().values(
            bank_account_id=bank.id, statement_ref=statement.statement_id[:200],
            file_hash=data_hash, source_name=source_name[:300],
            format=statement.source_format, format_version=statement.format_version,
            kind=statement.kind.value, currency=statement.currency,
            period_start=min(dates) if dates else (opening.date if opening else None),
            period_end=max(dates) if dates else (closing.date if closing else None),
            opening_minor=ledger.to_minor(opening.amount) if opening else None,
            opening_date=opening.date if opening else None,
            opening_derived=bool(opening and opening.derived),
            closing_minor=ledger.to_minor(closing.amount) if closing else None,
            closing_date=closing.date if closing else None,
            line_count=len(statement.lines), new_line_count=0, imported_at=now,
            imported_by=actor, warnings=list(statement.warnings) or None,
        ).returning(statements.c.id))
        assert statement_id is not None
        fresh = 0
        for chunk in _chunks(statement.lines, CHUNK):
            rows = [line_row(bank.id, statement_id, line) for line in chunk]
            fresh += len(await insert_rows(conn, statement_lines, rows,
                                           skip_conflicts_on=("bank_account_id", "line_identity"),
                                           returning="id"))
            if progress:
                progress(len(chunk))
        await conn.execute(statements.update().where(statements.c.id == statement_id)
                           .values(new_line_count=fresh))
        new_lines += fresh
    if new_lines >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
        # see `reconciliation.engine.ANALYZE_AFTER`: the next run looks these lines up
        await conn.execute(sa.text(f"ANALYZE {statement_lines.name}"))
    for other in skipped:
        log.info("statement.skipped_other_account", bank=bank.code, source=source_name,
                 statement=other.statement_id, other_account=other.account,
                 currency=other.currency)
    log.info("statement.imported", bank=bank.code, source=source_name, lines=total,
             new_lines=new_lines, skipped=len(skipped), warnings=len(warnings))
    return ImportResult(source_name, data_hash, False, len(parsed), total, new_lines, skipped,
                        warnings)


def read_for_account(
    bank: BankAccount,
    data: bytes,
    *,
    format: str | None = None,
    profile: CsvProfile | None = None,
    source_name: str = "<bytes>",
) -> Selection:
    """Read and check a whole file, and pick the statements that are `bank`'s.

    Every statement must be readable and add up (a file that contradicts itself is
    refused whole); the currency of the account is only required of the statements
    imported, so a USD card statement beside a CNY account's is skipped, not refused.
    """
    parsed = parse_statement(data, format=format, profile=profile, source_name=source_name)
    selection = select_for_account(bank, parsed, source_name=source_name)
    for statement in selection.chosen:
        validate_statement(statement, account_currency=bank.currency)
        check_account(bank, statement)
    return selection


async def import_statement(
    conn: AsyncConnection,
    bank: BankAccount,
    data: bytes,
    *,
    format: str | None = None,
    profile: CsvProfile | None = None,
    source_name: str = "<bytes>",
    actor: str = "system",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Read, check and store a statement file for `bank`, in the caller's transaction.

    Everything is checked before the first row is written: format, balances, currency of
    the account, the account the statement is for (see `read_for_account`: statements of
    other accounts in the file are skipped and reported in `ImportResult.skipped`).
    `progress` is called with the number of lines written after each chunk.
    """
    selection = read_for_account(bank, data, format=format, profile=profile,
                                 source_name=source_name)
    return await store_statements(conn, bank, selection.chosen, data_hash=file_hash(data),
                                  source_name=source_name, actor=actor, progress=progress,
                                  skipped=selection.skipped)
