"""Proof that the books hold: the trial balance, and `verify()` which recomputes
everything the ledger stores from the postings themselves."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import chain
from ledger.checkpoints import Checkpoint, checkpoint_discrepancies, last_recorded_checkpoint
from ledger.schema import (
    LANE_STRIDE,
    account_balances,
    accounts,
    hold_legs,
    holds,
    journal_entries,
    postings,
)
from ledger.types import AccountType, HoldStatus, TrialBalance, TrialBalanceRow, VerifyReport

#: verify() stops collecting after this many discrepancies
MAX_DISCREPANCIES = 100


async def trial_balance(conn: AsyncConnection) -> TrialBalance:
    b = account_balances.c
    # an account's balance is its lanes' sum, added up here: each lane's sums are 64-bit,
    # their sum over an account of several lanes need not be (SQLite's sum() raised
    # 'integer overflow', and PostgreSQL's answers a numeric)
    rows = await conn.execute(
        sa.select(accounts.c.id, accounts.c.code, accounts.c.name, accounts.c.type,
                  accounts.c.currency, b.posted_debits, b.posted_credits)
        .join(account_balances, b.account_id == accounts.c.id)
        .order_by(accounts.c.currency, accounts.c.code, b.lane)
    )
    nets: dict[int, int] = {}
    shown: list[Any] = []
    for r in rows:
        if r.id not in nets:
            nets[r.id] = 0
            shown.append(r)
        nets[r.id] += r.posted_debits - r.posted_credits
    out: list[TrialBalanceRow] = []
    by_type: dict[tuple[AccountType, str], int] = defaultdict(int)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in shown:
        net = nets[r.id]
        kind = AccountType(r.type)
        out.append(TrialBalanceRow(r.id, r.code, r.name, kind, r.currency, max(net, 0),
                                   max(-net, 0)))
        by_type[(kind, r.currency)] += net
        totals[r.currency][0] += max(net, 0)
        totals[r.currency][1] += max(-net, 0)
    return TrialBalance(tuple(out), dict(by_type), {c: (d, k) for c, (d, k) in totals.items()})


@dataclass
class _Walk:
    """One lane's chain (an account's, for an account of one lane) as verify() walks it."""

    code: str
    currency: str
    seq: int = 0
    net: int = 0
    debits: int = 0
    credits: int = 0
    head: str = chain.GENESIS
    booked_at: dt.datetime | None = None
    broken: bool = False


async def verify(conn: AsyncConnection, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
    """Recompute everything the ledger stores from the postings and walk every chain; then
    hold the books against each signed checkpoint given (already loaded, their signatures
    checked: `ledger.load_checkpoint`), which finds what the books' own agreement cannot —
    a history cut, rewound or rewritten behind the triggers before the checkpoint."""
    found: list[str] = []

    def report(message: str) -> None:
        if len(found) < MAX_DISCREPANCIES:
            found.append(message)

    entry_count = 0
    entry_result = await conn.stream(sa.select(journal_entries).order_by(journal_entries.c.booked_at))
    async for e in entry_result:
        entry_count += 1
        expected = chain.entry_hash(
            entry_id=e.id, idempotency_key=e.idempotency_key, request_hash=e.request_hash,
            kind=e.kind, description=e.description, effective_date=e.effective_date,
            booked_at=e.booked_at, reverses_entry_id=e.reverses_entry_id,
            external_ref=e.external_ref, metadata=e.metadata,
        )
        if expected != e.hash:
            report(f"journal entry {e.id} ({e.idempotency_key!r}): its fields no longer match "
                   "its hash — the row was changed after it was written")

    for r in await conn.execute(
        sa.select(postings.c.entry_id, postings.c.currency,
                  sa.func.sum(postings.c.amount).label("diff"))
        .group_by(postings.c.entry_id, postings.c.currency)
        .having(sa.func.sum(postings.c.amount) != 0)
    ):
        report(f"journal entry {r.entry_id} does not balance in {r.currency}: "
               f"debits minus credits = {r.diff} minor units")
    count = sa.func.count(postings.c.entry_id)
    for r in await conn.execute(
        sa.select(journal_entries.c.id, count.label("n"))
        .select_from(journal_entries.outerjoin(postings, postings.c.entry_id == journal_entries.c.id))
        .group_by(journal_entries.c.id).having(count < 2)
    ):
        report(f"journal entry {r.id} has {r.n} postings; every entry needs at least two")

    # every lane is a chain of its own, from its own base sequence number
    known = {r.id: r for r in await conn.execute(
        sa.select(accounts.c.id, accounts.c.code, accounts.c.currency, accounts.c.lanes)
        .order_by(accounts.c.id))}
    walks: dict[tuple[int, int], _Walk] = {}

    def walk_of(account_id: int, lane: int) -> _Walk:
        found = walks.get((account_id, lane))
        if found is None:
            account = known[account_id]
            found = walks[(account_id, lane)] = _Walk(account.code, account.currency,
                                                      seq=lane * LANE_STRIDE)
        return found

    posting_count = 0
    stream = await conn.stream(
        sa.select(postings, journal_entries.c.hash.label("entry_hash"),
                  journal_entries.c.booked_at.label("entry_booked_at"))
        # outer: a posting whose entry row was deleted is named at its own sequence number
        .outerjoin(journal_entries, journal_entries.c.id == postings.c.entry_id)
        .order_by(postings.c.account_id, postings.c.account_seq)
    )
    async for p in stream:
        posting_count += 1
        lane = p.account_seq // LANE_STRIDE
        walk = walk_of(p.account_id, lane)
        if walk.broken:
            continue
        where = f"account {walk.code!r} posting #{p.account_seq} (entry {p.entry_id})"
        if lane:
            where = f"account {walk.code!r} lane {lane} posting #{p.account_seq} (entry {p.entry_id})"
        walk.net += p.amount
        if p.amount > 0:
            walk.debits += p.amount
        else:
            walk.credits -= p.amount
        problem = None
        if lane >= known[p.account_id].lanes:
            problem = (f"it is numbered in lane {lane}, but the account has "
                       f"{known[p.account_id].lanes} lane(s)")
        elif p.account_seq != walk.seq + 1:
            problem = f"sequence jumps from #{walk.seq} to #{p.account_seq}: a posting is missing"
        elif p.entry_hash is None:
            problem = "its journal entry row is gone — deleted behind the triggers"
        elif p.currency != walk.currency:
            problem = f"currency {p.currency} but the account is kept in {walk.currency}"
        elif chain.posting_hash(walk.head, p.entry_hash, p.account_id, p.account_seq, p.amount,
                                p.currency, p.balance_after) != p.hash:
            problem = "its fields no longer match its hash chain — the row was changed after it was written"
        elif p.balance_after != walk.net:
            problem = f"running balance says {p.balance_after} but the postings sum to {walk.net}"
        elif p.booked_at != p.entry_booked_at:
            # the entry's booking time is in its hash; the posting's copy must match it
            problem = (f"booked at {p.booked_at.isoformat()}, but its entry was booked at "
                       f"{p.entry_booked_at.isoformat()}")
        elif walk.booked_at is not None and p.booked_at < walk.booked_at:
            # balance(as_of=) and statement() search booking times by sequence number
            problem = (f"booked at {p.booked_at.isoformat()}, before posting #{walk.seq} "
                       f"({walk.booked_at.isoformat()}): a lane's postings must be booked "
                       "in sequence order")
        if problem:
            report(f"{where}: {problem}")
            walk.broken = True
            continue
        walk.seq = p.account_seq
        walk.head = p.hash
        walk.booked_at = p.booked_at

    pending: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for leg in await conn.execute(
        sa.select(hold_legs.c.account_id, hold_legs.c.amount)
        .join(holds, holds.c.id == hold_legs.c.hold_id)
        .where(holds.c.status == HoldStatus.PENDING.value)
    ):
        pending[leg.account_id][0 if leg.amount > 0 else 1] += abs(leg.amount)
    held = await conn.scalar(sa.select(sa.func.count()).select_from(holds)
                             .where(holds.c.status == HoldStatus.PENDING.value))

    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    stored_pending: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    lanes_found: dict[int, set[int]] = defaultdict(set)
    for b in await conn.execute(sa.select(account_balances).order_by(
            account_balances.c.account_id, account_balances.c.lane)):
        walk = walk_of(b.account_id, b.lane)
        lanes_found[b.account_id].add(b.lane)
        totals[walk.currency][0] += b.posted_debits
        totals[walk.currency][1] += b.posted_credits
        stored_pending[b.account_id][0] += b.pending_debits
        stored_pending[b.account_id][1] += b.pending_credits
        if walk.broken:
            continue
        stored = (b.posted_debits, b.posted_credits, b.seq, b.head_hash, b.last_booked_at)
        if stored != (walk.debits, walk.credits, walk.seq, walk.head, walk.booked_at):
            of = f"account {walk.code!r}" + (f" lane {b.lane}" if b.lane else "")
            report(f"{of}: stored balance (debits {b.posted_debits}, credits "
                   f"{b.posted_credits}, #{b.seq}) differs from its postings (debits "
                   f"{walk.debits}, credits {walk.credits}, #{walk.seq}) or its chain head or "
                   "last booking time")
    for account_id, account in known.items():
        if lanes_found[account_id] != set(range(account.lanes)):
            report(f"account {account.code!r} has {account.lanes} lane(s) but balance rows "
                   f"for lanes {sorted(lanes_found[account_id])}")
        want = pending.get(account_id, [0, 0])
        have = stored_pending.get(account_id, [0, 0])
        if have != want:
            report(f"account {account.code!r}: pending (debits {have[0]}, credits "
                   f"{have[1]}) differs from its pending holds "
                   f"(debits {want[0]}, credits {want[1]})")
    for cur, (debits, credits) in sorted(totals.items()):
        if debits != credits:
            report(f"{cur}: total posted debits {debits} differ from credits {credits}")

    last = await last_recorded_checkpoint(conn)
    if last is not None and entry_count < last.entry_count:
        report(f"the ledger's checkpoint log says the checkpoint of "
               f"{chain.booked_text(last.taken_at)} ({last.hash[:12]}) counted "
               f"{last.entry_count} journal entries; the books hold {entry_count} — entries "
               "were deleted behind the triggers")
    for checkpoint in checkpoints:
        for problem in await checkpoint_discrepancies(conn, checkpoint):
            report(problem)

    return VerifyReport(entry_count, posting_count, len(known), int(held or 0), tuple(found),
                        checkpoints=len(checkpoints))


__all__ = ["trial_balance", "verify"]
