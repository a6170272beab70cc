"""A reconciliation run: copy new book items, match open statement lines chunk by chunk
with the rules in order, post what the matches prove, and refresh the exceptions queue.

Work is linear in the number of open lines: each chunk fetches only the items that can
match it (by its references, by its amounts within its date window, and a bounded pool
for batch settlements) through indexes, and the rules look items up in dicts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from reconciliation import entries
from reconciliation.bulk import insert_rows, update_where_in
from reconciliation.config import BankAccount
from reconciliation.exceptions import refresh_exceptions
from reconciliation.items import (
    Item,
    items_by_amounts,
    items_by_refs,
    items_in_window,
    sync_book_items,
)
from reconciliation.matching import ChunkMatcher, Line, Proposal, line_from_row
from reconciliation.schema import (
    book_items,
    exceptions,
    match_items,
    match_lines,
    matches,
    statement_lines,
)

log = structlog.get_logger("reconciliation")

CHUNK = 5_000
#: after copying this many items (or storing this many lines), refresh the planner's
#: statistics: a table filled inside the running transaction looks empty to PostgreSQL,
#: which then scans it for every look-up instead of using the indexes
ANALYZE_AFTER = 5_000


async def analyze(conn: AsyncConnection, table: sa.Table) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text(f"ANALYZE {table.name}"))


@dataclass
class ReconcileResult:
    bank: str
    up_to: dt.date
    lines_considered: int = 0
    items_added: int = 0
    matched_lines: int = 0
    matched_items: int = 0
    matched_amount_minor: int = 0
    by_rule: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fees_minor: int = 0
    written_off_minor: int = 0
    entries_posted: int = 0
    open_line_exceptions: int = 0
    open_item_exceptions: int = 0


async def reconcile(
    conn: AsyncConnection,
    bank: BankAccount,
    up_to: dt.date,
    *,
    actor: str = "engine",
    progress: Callable[[int], None] | None = None,
) -> ReconcileResult:
    """Match every open line booked on or before `up_to`, in the caller's transaction."""
    result = ReconcileResult(bank.code, up_to)
    result.items_added = await sync_book_items(conn, bank)
    if result.items_added >= ANALYZE_AFTER:
        await analyze(conn, book_items)
    ids = (await conn.scalars(
        sa.select(statement_lines.c.id)
        .where(statement_lines.c.bank_account_id == bank.id,
               statement_lines.c.status == "open",
               statement_lines.c.booking_date <= up_to)
        .order_by(statement_lines.c.booking_date, statement_lines.c.id)
    )).all()
    result.lines_considered = len(ids)
    for start in range(0, len(ids), CHUNK):
        chunk_ids = ids[start:start + CHUNK]
        rows = await conn.execute(sa.select(statement_lines)
                                  .where(statement_lines.c.id.in_(chunk_ids),
                                         # an earlier chunk may have taken a line already
                                         statement_lines.c.status == "open")
                                  .order_by(statement_lines.c.booking_date, statement_lines.c.id))
        lines = [line_from_row(r) for r in rows]
        proposals = await match_chunk(conn, bank, lines)
        await apply_proposals(conn, bank, proposals, actor=actor, result=result)
        if progress:
            progress(len(chunk_ids))
    counts = await refresh_exceptions(conn, bank, up_to)
    result.open_line_exceptions, result.open_item_exceptions = counts
    if result.lines_considered:
        # the operator's own systems (treasury, finance) hear of each reconciliation
        await ledger.record_event(
            conn, topic="statement.reconciled", object_type="bank_account",
            object_id=bank.code, audience=ledger.INTERNAL, payload={
                "bank_account": bank.code, "up_to": up_to.isoformat(),
                "lines_considered": result.lines_considered,
                "matched_lines": result.matched_lines,
                "open_line_exceptions": counts[0], "open_item_exceptions": counts[1]})
    log.info("reconcile.done", bank=bank.code, up_to=str(up_to), lines=result.lines_considered,
             matched=result.matched_lines, rules=dict(result.by_rule),
             open_lines=counts[0], open_items=counts[1])
    return result


async def match_chunk(conn: AsyncConnection, bank: BankAccount,
                      lines: Sequence[Line]) -> list[Proposal]:
    rules = bank.config.rules
    enabled = set(rules.enabled)
    refs = {r for line in lines for r in (*line.raw_refs, *line.batch_refs)}
    by_ref = await items_by_refs(conn, bank, refs)
    matcher = ChunkMatcher(rules, bank.config.tolerance_minor, bank.clearing_id, by_ref)
    left: Sequence[Line] = lines
    if "exact_reference" in enabled:
        left = matcher.exact_reference(left)
    if "amount_date_reference" in enabled and left:
        window = dt.timedelta(days=rules.date_window_days)
        lo = min(min(x.booking_date, x.value_date) for x in left) - window
        hi = max(max(x.booking_date, x.value_date) for x in left) + window
        by_amount = await items_by_amounts(conn, bank, {x.amount for x in left}, lo, hi)
        left = matcher.amount_date_reference(left, by_amount)
    if "batch" in enabled and left:
        left = await _batches(conn, bank, matcher, left)
    if "many_to_one" in enabled and left:
        partners = await _partner_lines(conn, bank, left, matcher)
        left = [line for line in matcher.many_to_one([*left, *partners])
                if line.id not in {p.id for p in partners}]
    if "tolerance" in enabled and left and bank.config.tolerance_minor > 0:
        left = matcher.tolerance_write_off(left)
    return matcher.proposals


async def _partner_lines(conn: AsyncConnection, bank: BankAccount, lines: Sequence[Line],
                         matcher: ChunkMatcher) -> list[Line]:
    """Open lines outside this chunk that share an end-to-end id with a line of it whose
    item differs in amount: the other parts of a payment the bank split (rule 4)."""
    refs = {raw for line in lines for raw, ref in zip(line.raw_refs, line.refs, strict=False)
            if any(i.amount != line.amount for i in matcher.free(matcher.by_ref.get(ref, ())))}
    if not refs:
        return []
    own = {line.id for line in lines}
    rows = await conn.execute(sa.select(statement_lines).where(
        statement_lines.c.bank_account_id == bank.id, statement_lines.c.status == "open",
        statement_lines.c.end_to_end_id.in_(sorted(refs)[:1000])))
    return [line_from_row(r) for r in rows if r.id not in own]


def _looks_like_batch(bank: BankAccount, line: Line) -> bool:
    if line.batch:
        return True
    return any(word in line.text for word in bank.config.rules.batch_keywords)


def _contradicted(line: Line) -> bool:
    """A batch whose details contradict its entry (see `parsers.camt_batch`) says
    nothing reliable about its items or fee: it waits for a person."""
    return bool((line.batch or {}).get("contradictions"))


async def _batches(conn: AsyncConnection, bank: BankAccount, matcher: ChunkMatcher,
                   lines: Sequence[Line]) -> list[Line]:
    rules = bank.config.rules
    left = []
    for line in lines:
        if not _looks_like_batch(bank, line) or _contradicted(line):
            left.append(line)
            continue
        proposal = matcher.batch_by_references(line) if line.batch_refs else None
        if proposal is None:
            window = dt.timedelta(days=rules.date_window_days)
            latest = max(line.booking_date, line.value_date)
            pool = await items_in_window(conn, bank, bank.clearing_id, latest - window,
                                         latest, credit=line.amount > 0,
                                         limit=rules.batch_pool_limit)
            proposal = matcher.batch_from_pool(line, pool)
        if proposal is None and line.amount < 0:
            # a bulk payout: the payout clearing account's items
            window = dt.timedelta(days=rules.date_window_days)
            pool = await items_in_window(conn, bank, bank.payout_clearing_id,
                                         line.booking_date - window, line.booking_date + window,
                                         credit=False, limit=rules.batch_pool_limit)
            proposal = matcher.batch_from_pool(line, pool)
        if proposal is None:
            left.append(line)
        else:
            matcher.take(proposal)
    return left


async def apply_proposals(conn: AsyncConnection, bank: BankAccount, proposals: Sequence[Proposal],
                          *, actor: str, result: ReconcileResult | None = None,
                          rule_override: str | None = None, reason: str | None = None
                          ) -> list[uuid.UUID]:
    """Record the matches, post their entries, close lines, items and exceptions.

    Plain matches (no fee, no difference) of one booking date share one settlement entry;
    a batch settlement or a tolerated difference gets an entry of its own.
    """
    if not proposals:
        return []
    now = dt.datetime.now(dt.UTC)
    requests: list[ledger.EntryRequest] = []
    owners: list[list[uuid.UUID]] = []
    ids = [uuid.uuid4() for _ in proposals]
    plain: dict[dt.date, list[int]] = defaultdict(list)
    for index, proposal in enumerate(proposals):
        if proposal.plain and rule_override is None:
            plain[min(line.booking_date for line in proposal.lines)].append(index)
            continue
        request = _request_for(bank, [proposal], [ids[index]], proposal.rule,
                               rule_override or proposal.rule)
        if request is not None:
            requests.append(request)
            owners.append([ids[index]])
    for day, indexes in sorted(plain.items()):
        request = _request_for(bank, [proposals[i] for i in indexes], [ids[i] for i in indexes],
                               "settlement", "settlement", day=day)
        if request is not None:
            requests.append(request)
            owners.append([ids[i] for i in indexes])
    entry_of: dict[uuid.UUID, uuid.UUID] = {}
    if requests:
        posted = await ledger.post_many(conn, requests)
        for entry, match_ids in zip(posted, owners, strict=True):
            for match_id in match_ids:
                entry_of[match_id] = entry.id
    await insert_rows(conn, matches, [
        {"id": ids[i], "bank_account_id": bank.id, "rule": rule_override or p.rule,
         "fee_minor": p.fee, "difference_minor": p.difference, "score": p.score,
         "entry_id": entry_of.get(ids[i]), "created_at": now, "created_by": actor,
         "reason": (reason or p.reason)[:2000]}
        for i, p in enumerate(proposals)
    ])
    await insert_rows(conn, match_lines, [
        {"match_id": ids[i], "line_id": line.id}
        for i, p in enumerate(proposals) for line in p.lines
    ])
    await insert_rows(conn, match_items, [
        {"match_id": ids[i], "account_id": item.account_id, "account_seq": item.account_seq}
        for i, p in enumerate(proposals) for item in p.items
    ])
    line_ids = [line.id for p in proposals for line in p.lines]
    await _set_line_status(conn, line_ids, "matched")
    items = [item for p in proposals for item in p.items]
    await set_item_status(conn, items, "matched")
    resolution = "manual_match" if rule_override else "auto_match"
    await close_exceptions(conn, line_ids, items, resolution=resolution, actor=actor,
                           reason=reason or "matched by the engine", now=now)
    if result is not None:
        for p in proposals:
            result.matched_lines += len(p.lines)
            result.matched_items += len(p.items)
            result.matched_amount_minor += sum(line.amount for line in p.lines)
            result.by_rule[p.rule] += len(p.lines)
            result.fees_minor += p.fee
            result.written_off_minor += p.difference
        result.entries_posted += len(requests)
    return ids


def _request_for(bank: BankAccount, proposals: Sequence[Proposal], ids: Sequence[uuid.UUID],
                 label: str, rule: str, day: dt.date | None = None) -> ledger.EntryRequest | None:
    lines = [line for p in proposals for line in p.lines]
    items = [item for p in proposals for item in p.items]
    legs = entries.legs_for(bank, sum(line.amount for line in lines), items,
                            fee=sum(p.fee for p in proposals),
                            difference=sum(p.difference for p in proposals))
    first = proposals[0]
    when = day or min(line.booking_date for line in lines)
    if len(proposals) == 1:
        description = f"{bank.code}: {first.reason}"
        refs = [x.external_ref for x in items if x.external_ref]
        external_ref = first.lines[0].raw_refs[0] if first.lines[0].raw_refs else (
            refs[0] if refs else None)
    else:
        description = (f"{bank.code}: {len(lines)} statement lines of {when} matched to "
                       f"{len(items)} book items")
        external_ref = None
    kind = entries.WRITE_OFF if rule == "write_off" else (
        entries.ADJUSTMENT if rule == "adjustment" else entries.SETTLEMENT)
    metadata: dict[str, Any] = {"bank": bank.code, "rule": rule,
                                "match_ids": [str(i) for i in ids[:50]],
                                "statement_line_ids": [line.id for line in lines[:50]]}
    if len(ids) > 50:
        metadata["matches"] = len(ids)
    return entries.entry_request(bank, f"recon:{bank.code}:{label}:{ids[0]}", kind, when, legs,
                                 description, metadata, external_ref=external_ref)


async def _set_line_status(conn: AsyncConnection, line_ids: Sequence[int], status: str) -> None:
    await update_where_in(conn, statement_lines, "id", line_ids, {"status": status})


async def set_item_status(conn: AsyncConnection, items: Sequence[Item], status: str) -> None:
    by_account: dict[int, list[int]] = defaultdict(list)
    for item in items:
        by_account[item.account_id].append(item.account_seq)
    for account_id, seqs in by_account.items():
        await update_where_in(conn, book_items, "account_seq", seqs, {"status": status},
                              extra_where=book_items.c.account_id == account_id)


async def close_exceptions(conn: AsyncConnection, line_ids: Sequence[int], items: Sequence[Item],
                           *, resolution: str, actor: str, reason: str, now: dt.datetime) -> None:
    """Open exceptions of these lines and items are resolved by what just happened."""
    values: dict[str, Any] = {"status": "resolved", "resolved_at": now, "resolved_by": actor,
                              "resolution": resolution, "reason": reason[:2000]}
    await update_where_in(conn, exceptions, "line_id", line_ids, values,
                          extra_where=exceptions.c.status == "open")
    by_account: dict[int, list[int]] = defaultdict(list)
    for item in items:
        by_account[item.account_id].append(item.account_seq)
    for account_id, seqs in by_account.items():
        await update_where_in(conn, exceptions, "item_account_seq", seqs, values,
                              extra_where=sa.and_(exceptions.c.item_account_id == account_id,
                                                  exceptions.c.status == "open"))


__all__ = ["ReconcileResult", "apply_proposals", "match_chunk", "reconcile"]
