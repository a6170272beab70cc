"""Journal entry ids are time-ordered UUIDs (version 7), so new entries append to the
right-hand edge of the entries' and postings' indexes instead of landing anywhere."""

from __future__ import annotations

import asyncio
import time
import uuid

import ledger
from ledger.ids import new_entry_id, new_entry_id_texts
from tests.ledger.chart import capture, open_chart


def test_an_entry_id_is_a_version_7_rfc_uuid_that_begins_with_the_time():
    before = time.time_ns() // 1_000_000
    made = new_entry_id()
    after = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after
    [text] = new_entry_id_texts(1)
    assert uuid.UUID(text).version == 7 and str(uuid.UUID(text)) == text


def test_ids_made_later_sort_after_and_never_repeat():
    first = [new_entry_id_texts(1)[0] for _ in range(5_000)]
    time.sleep(0.002)
    later = [new_entry_id() for _ in range(5_000)]
    assert max(uuid.UUID(t) for t in first) < min(later)
    assert len(set(first) | {str(u) for u in later}) == 10_000


def test_a_batch_of_ids_is_version_7_time_ordered_and_unique():
    before = time.time_ns() // 1_000_000
    batch = [uuid.UUID(t) for t in new_entry_id_texts(20_000)]
    after = time.time_ns() // 1_000_000
    assert {u.version for u in batch} == {7} and {u.variant for u in batch} == {uuid.RFC_4122}
    assert all(before <= u.int >> 80 <= after for u in batch)
    assert [u.int >> 80 for u in batch] == sorted(u.int >> 80 for u in batch)
    assert len(set(batch)) == 20_000
    # the random bits are random: every value of the variant's free bits and the digits
    assert {str(u)[19] for u in batch} == set("89ab")
    assert {str(u)[15] for u in batch} == set("0123456789abcdef")


async def test_posted_entries_carry_time_ordered_ids(db):
    await open_chart(db)
    async with db.begin() as conn:
        one = await ledger.post(conn, capture("ids-1", "10.00", "1.00"))
    await asyncio.sleep(0.002)
    async with db.begin() as conn:
        two, three = await ledger.post_many(conn, [capture("ids-2", "20.00", "2.00"),
                                                   capture("ids-3", "30.00", "3.00")])
    assert {e.id.version for e in (one, two, three)} == {7}
    assert one.id < two.id and one.id < three.id
