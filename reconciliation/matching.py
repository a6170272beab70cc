"""The matching rules: pure functions over open statement lines and open book items,
indexed by reference, amount and date so no rule compares every line with every item.

Sign convention: a line's amount is money in (> 0) or out (< 0) of the bank account; an
item's is as posted (debit > 0). A capture (Dr clearing) is explained by money in, a
refund or payout (Cr clearing) by money out, so a line explains items whose amounts add
up to its own, plus what the bank kept as a fee.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciliation.config import MatchingRules
from reconciliation.items import Item, ItemKey, normalize_ref


@dataclass(slots=True)
class Line:
    id: int
    amount: int
    booking_date: dt.date
    value_date: dt.date
    #: normalised references, most specific first: end-to-end id, bank reference,
    #: customer reference
    refs: tuple[str, ...]
    #: raw references, for exact look-ups
    raw_refs: tuple[str, ...]
    #: description and counterparty, upper case, for fuzzy reference matching
    text: str
    batch: dict[str, Any] | None

    def days_from(self, day: dt.date) -> int:
        return min(abs((day - self.booking_date).days), abs((day - self.value_date).days))

    @property
    def batch_refs(self) -> tuple[str, ...]:
        if not self.batch:
            return ()
        return tuple(self.batch.get("item_references") or ())


def line_from_row(row: Any) -> Line:
    raw = tuple(r for r in (row.end_to_end_id, row.bank_reference, row.customer_reference) if r)
    refs = tuple(dict.fromkeys(n for n in (normalize_ref(r) for r in raw) if n))
    text = " ".join(t for t in (row.description, row.counterparty_name) if t).upper()
    return Line(row.id, row.amount_minor, row.booking_date, row.value_date, refs, raw, text,
                row.batch)


@dataclass
class Proposal:
    rule: str
    lines: list[Line]
    items: list[Item]
    score: int = 100
    #: gross items minus the bank's net, kept by the bank as its fee
    fee: int = 0
    #: written off to the differences account
    difference: int = 0
    reason: str = ""

    @property
    def plain(self) -> bool:
        return self.fee == 0 and self.difference == 0


@dataclass
class ChunkMatcher:
    """Matches one chunk of lines; `claimed` keeps an item from being used twice."""

    rules: MatchingRules
    tolerance: int
    clearing_account_id: int
    by_ref: dict[str, list[Item]]
    claimed: set[ItemKey] = field(default_factory=set)
    proposals: list[Proposal] = field(default_factory=list)

    def take(self, proposal: Proposal) -> None:
        for item in proposal.items:
            self.claimed.add(item.key)
        self.proposals.append(proposal)

    def free(self, items: Iterable[Item]) -> list[Item]:
        return [i for i in items if i.key not in self.claimed]

    # rule 1 -------------------------------------------------------------------------
    def exact_reference(self, lines: Sequence[Line]) -> list[Line]:
        left = []
        for line in lines:
            hit = None
            for ref in line.refs:
                hit = next((i for i in self.free(self.by_ref.get(ref, ()))
                            if i.amount == line.amount), None)
                if hit:
                    break
            if hit:
                self.take(Proposal("exact_reference", [line], [hit],
                                   reason=f"reference {hit.external_ref}"))
            else:
                left.append(line)
        return left

    # rule 2 -------------------------------------------------------------------------
    def amount_date_reference(self, lines: Sequence[Line],
                              by_amount: dict[int, list[Item]]) -> list[Line]:
        left = []
        window = self.rules.date_window_days
        for line in lines:
            scored = sorted(
                ((reference_score(line, i), -abs(line.days_from(i.effective_date)), i)
                 for i in self.free(by_amount.get(line.amount, ()))
                 if line.days_from(i.effective_date) <= window),
                key=lambda t: (t[0], t[1]), reverse=True)
            if scored and scored[0][0] >= self.rules.fuzzy_threshold and (
                    len(scored) == 1 or scored[1][0] < scored[0][0]):
                score, _, item = scored[0]
                self.take(Proposal("amount_date_reference", [line], [item], score=score,
                                   reason=f"amount, date and reference {item.external_ref!r} "
                                          f"({score}% alike)"))
            else:
                left.append(line)
        return left

    # rule 3 -------------------------------------------------------------------------
    def batch_by_references(self, line: Line) -> Proposal | None:
        refs = [normalize_ref(r) for r in line.batch_refs]
        items: list[Item] = []
        for ref in refs:
            found = [i for i in self.free(self.by_ref.get(ref, ()))
                     if (i.amount > 0) == (line.amount > 0) and i.key not in {x.key for x in items}]
            if found:
                items.append(found[0])
        count = (line.batch or {}).get("item_count")
        if not items or (count is not None and len(items) != count):
            return None
        return self.batch_proposal(line, items, "listed references")

    def batch_proposal(self, line: Line, items: list[Item], how: str) -> Proposal | None:
        gross = sum(i.amount for i in items)
        fee = gross - line.amount
        batch = line.batch or {}
        if batch.get("gross_minor") is not None and batch["gross_minor"] != gross:
            return None
        if batch.get("fees_minor") is not None and abs(batch["fees_minor"]) != abs(fee):
            return None
        if not fee_is_plausible(gross, fee, self.rules.max_fee_bps):
            return None
        return Proposal("batch", [line], items, fee=fee,
                        reason=f"batch of {len(items)} items by {how}: gross {gross}, "
                               f"fee {fee}, net {line.amount}")

    def batch_from_pool(self, line: Line, pool: Sequence[Item]) -> Proposal | None:
        pool = self.free(pool)
        batch = line.batch or {}
        gross_target = batch.get("gross_minor")
        count = batch.get("item_count")
        if gross_target is None and batch.get("fees_minor") is not None:
            gross_target = line.amount + (batch["fees_minor"] if line.amount > 0
                                          else -batch["fees_minor"])
        if gross_target is not None:
            found = subset_with_sum(pool, gross_target, count)
            return self.batch_proposal(line, found, "amounts adding up to the gross") if found else None
        # no gross stated: the bank settled one day's items, less its fee
        by_day: dict[dt.date, list[Item]] = {}
        for item in pool:
            by_day.setdefault(item.effective_date, []).append(item)
        for day in sorted(by_day, key=lambda d: line.days_from(d)):
            items = by_day[day]
            if count is not None and len(items) != count:
                continue
            proposal = self.batch_proposal(line, items, f"all open items of {day}")
            if proposal:
                return proposal
        return None

    # rule 4 -------------------------------------------------------------------------
    def many_to_one(self, lines: Sequence[Line]) -> list[Line]:
        groups: dict[str, list[Line]] = {}
        for line in lines:
            for ref in line.refs:
                groups.setdefault(ref, []).append(line)
        used: set[int] = set()
        for ref, group in groups.items():
            group = [g for g in group if g.id not in used]
            if len(group) < 2:
                continue
            total = sum(g.amount for g in group)
            item = next((i for i in self.free(self.by_ref.get(ref, ())) if i.amount == total), None)
            if item:
                used.update(g.id for g in group)
                self.take(Proposal("many_to_one", group, [item],
                                   reason=f"{len(group)} lines with reference "
                                          f"{item.external_ref} add up to it"))
        return [line for line in lines if line.id not in used]

    # rule 5 -------------------------------------------------------------------------
    def tolerance_write_off(self, lines: Sequence[Line]) -> list[Line]:
        left = []
        for line in lines:
            hit = None
            for ref in line.refs:
                hit = next((i for i in self.free(self.by_ref.get(ref, ()))
                            if (i.amount > 0) == (line.amount > 0)
                            and abs(i.amount - line.amount) <= self.tolerance), None)
                if hit:
                    break
            if hit:
                self.take(Proposal("tolerance", [line], [hit], score=90,
                                   difference=hit.amount - line.amount,
                                   reason=f"reference {hit.external_ref}, difference "
                                          f"{hit.amount - line.amount} within tolerance "
                                          f"{self.tolerance}"))
            else:
                left.append(line)
        return left


def fee_is_plausible(gross: int, fee: int, max_fee_bps: int) -> bool:
    """The bank's fee is an expense (it keeps part of what it settles, or takes more than
    it pays out), at most `max_fee_bps` of the gross."""
    if gross == 0:
        return False
    return fee >= 0 and fee * 10_000 <= abs(gross) * max_fee_bps


def reference_score(line: Line, item: Item) -> int:
    """How alike the item's reference is to anything the line says, 0-100."""
    ref = item.ref
    if not ref:
        return 0
    if ref in line.refs:
        return 100
    if any(_same_scheme(r, ref) for r in line.refs):
        # the line names another id of the same kind (TXN12 vs TXN13): evidence against
        return 0
    text = normalize_ref(line.text)
    if ref in text:
        return 95
    best = 0
    for candidate in (*line.refs, *_tokens(line.text)):
        if candidate:
            best = max(best, _likeness(ref, candidate))
    return best


def _likeness(a: str, b: str) -> int:
    """difflib's ratio (2 x matching characters / total characters) as a whole percentage,
    in integers: the package keeps float out of every computation near money."""
    matching = sum(block.size for block in
                   difflib.SequenceMatcher(None, a, b).get_matching_blocks())
    return 200 * matching // (len(a) + len(b))


def _same_scheme(a: str, b: str) -> bool:
    return len(a) == len(b) and a[:3] == b[:3]


def _tokens(text: str) -> list[str]:
    return [normalize_ref(t) for t in text.split() if len(t) >= 4]


_MAX_STATES = 200_000


def subset_with_sum(pool: Sequence[Item], target: int, count: int | None) -> list[Item] | None:
    """Items whose amounts add up to `target` (and number `count`, when given): a bounded
    dynamic programme over reachable sums; gives up (None) beyond `_MAX_STATES` states."""
    if count is not None and count == len(pool):
        return list(pool) if sum(i.amount for i in pool) == target else None
    # state: (sum, n) -> index tuple; n only tracked when a count is wanted
    states: dict[tuple[int, int], tuple[int, ...]] = {(0, 0): ()}
    for index, item in enumerate(pool):
        additions = {}
        for (total, n), chosen in states.items():
            key = (total + item.amount, n + 1 if count is not None else 0)
            if key not in states and key not in additions:
                additions[key] = (*chosen, index)
        states.update(additions)
        wanted = (target, count if count is not None else 0)
        if states.get(wanted):
            return [pool[i] for i in states[wanted]]
        if len(states) > _MAX_STATES:
            return None
    return None
