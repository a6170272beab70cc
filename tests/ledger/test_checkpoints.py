"""Signed checkpoints: the insider's cut that verify() alone cannot see, found and named;
rewritten history, key rotation, tampered files, one supplier's proof; and verify()
naming a posting whose entry row is gone. Every attack is done for real, with the
triggers off, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

import ledger
from ledger import chain, merkle, signing
from ledger.checkpoints import load_checkpoint, load_proof, prove, take_checkpoint
from tests.ledger.chart import capture, cny, open_chart


async def _books(db, n: int = 3) -> list[ledger.JournalEntry]:
    await open_chart(db)
    posted = []
    async with db.begin() as conn:
        for i in range(n):
            posted.append(await ledger.post(conn, capture(f"cap-{i}", f"{100 + i}.00", "3.00")))
    return posted


async def _checkpoint(db, key: signing.SigningKey) -> ledger.Checkpoint:
    async with db.begin() as conn:
        return await take_checkpoint(conn, key)


async def _verify(db, *checkpoints: ledger.Checkpoint) -> ledger.VerifyReport:
    async with db.connect() as conn:
        if not checkpoints:
            return await ledger.verify(conn)
        return await ledger.verify(conn, checkpoints=checkpoints)


def _id(conn, value):
    return value.hex if conn.dialect.name == "sqlite" else value


_APPEND_ONLY = ("journal_entries", "postings", "ledger_checkpoints")


@asynccontextmanager
async def insider(db) -> AsyncIterator[AsyncConnection]:
    """An insider's session with the ledger's rules off, committed at the end. PostgreSQL:
    a superuser in replica mode (no triggers, no foreign keys fire). SQLite: a plain client
    on the file (foreign keys are off unless a client asks), the triggers dropped."""
    if db.dialect.name == "postgresql":
        async with db.begin() as conn:
            await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            yield conn
        return
    plain = create_async_engine(db.url)
    try:
        async with plain.begin() as conn:
            for table in _APPEND_ONLY:
                for op in ("update", "delete"):
                    await conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
            yield conn
    finally:
        await plain.dispose()


async def _cut_newest_entry(db, entry: ledger.JournalEntry, *, forget_checkpoints: bool) -> None:
    """The insider's cut: the newest entry and its postings deleted, each account's balance
    row wound back to its previous posting, so the books agree with themselves again."""
    async with insider(db) as conn:
        if forget_checkpoints:
            await conn.execute(sa.text("DELETE FROM ledger_checkpoints"))
        await conn.execute(sa.text("DELETE FROM postings WHERE entry_id = :e"),
                           {"e": _id(conn, entry.id)})
        await conn.execute(sa.text("DELETE FROM journal_entries WHERE id = :e"),
                           {"e": _id(conn, entry.id)})
        for leg in entry.postings:
            prev = (await conn.execute(sa.text(
                "SELECT hash, balance_after, booked_at FROM postings WHERE account_id = :a "
                "AND account_seq = :s"), {"a": leg.account_id, "s": leg.account_seq - 1})).first()
            debit, credit = (leg.amount, 0) if leg.amount > 0 else (0, -leg.amount)
            await conn.execute(sa.text(
                "UPDATE account_balances SET seq = seq - 1, posted_debits = posted_debits - :d, "
                "posted_credits = posted_credits - :c, head_hash = :h, last_booked_at = :t "
                "WHERE account_id = :a"),
                {"d": debit, "c": credit, "a": leg.account_id,
                 "h": prev.hash if prev else chain.GENESIS, "t": prev.booked_at if prev else None})


async def test_the_cut_tail_passes_plain_verify_and_fails_against_the_checkpoint(db):
    posted = await _books(db)
    key = signing.SigningKey.generate()
    checkpoint = await _checkpoint(db, key)
    await _cut_newest_entry(db, posted[-1], forget_checkpoints=True)

    # the motivating fact: the books agree with themselves after the cut
    plain = await _verify(db)
    assert plain.ok, plain.discrepancies
    assert plain.entries == 2

    report = await _verify(db, checkpoint)
    assert not report.ok
    when = chain.booked_text(checkpoint.head.taken_at)
    cut = [d for d in report.discrepancies if "cut or rewound" in d]
    # clearing, the supplier's payable and commission each lost their posting #3
    assert {d.split(" posting")[0] for d in cut} == {
        "account '1102.clearing.icbc'", "account '2202.payable.s1'",
        "account '6001.income.commission'"}
    assert all("posting #3" in d and when in d for d in cut), cut
    assert any("signed 3 journal entries, the books hold 2" in d for d in report.discrepancies)
    assert any("not in the ledger's checkpoint log" in d for d in report.discrepancies)


async def test_a_cut_the_checkpoint_log_still_remembers_fails_plain_verify(db):
    """An insider who cuts the tail but leaves the (append-only) checkpoint log alone is
    caught by verify() itself: fewer entries than the last checkpoint counted."""
    posted = await _books(db)
    await _checkpoint(db, signing.SigningKey.generate())
    await _cut_newest_entry(db, posted[-1], forget_checkpoints=False)
    report = await _verify(db)
    assert report.first_discrepancy is not None
    assert "counted 3 journal entries; the books hold 2" in report.first_discrepancy


async def test_the_checkpoint_log_is_append_only(db):
    await _books(db, 1)
    await _checkpoint(db, signing.SigningKey.generate())
    for sql in ("DELETE FROM ledger_checkpoints", "UPDATE ledger_checkpoints SET entry_count = 0"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.begin() as conn:
                await conn.execute(sa.text(sql))


async def test_books_that_extend_their_checkpoints_verify(db):
    await _books(db, 2)
    key = signing.SigningKey.generate()
    first = await _checkpoint(db, key)
    async with db.begin() as conn:
        await ledger.post(conn, capture("later", "10.00", "1.00", supplier="2202.payable.s2"))
    second = await _checkpoint(db, key)
    report = await _verify(db, first, second)
    assert report.ok, report.discrepancies
    assert report.summary().endswith("chains intact; the books extend 2 signed checkpoints")
    assert (first.head.entry_count, second.head.entry_count) == (2, 3)
    leaf = next(x for x in second.leaves if x.code == "2202.payable.s2")
    assert (leaf.seq, leaf.balance) == (1, -900)


async def test_history_rewritten_before_the_checkpoint_with_consistent_chains(db):
    """The insider edits an old posting and recomputes every hash after it, so the chains
    are consistent again and verify() alone passes; the checkpoint's heads are not."""
    posted = await _books(db)
    checkpoint = await _checkpoint(db, signing.SigningKey.generate())
    async with insider(db) as conn:
        # one fen moved from supplier 1's first capture to the commission, both chains redone
        first = posted[0]
        entry_hash = (await conn.execute(sa.text("SELECT hash FROM journal_entries WHERE id = :e"),
                                         {"e": _id(conn, first.id)})).scalar_one()
        for code, delta in (("2202.payable.s1", 1), ("6001.income.commission", -1)):
            account = (await conn.execute(sa.text("SELECT id FROM accounts WHERE code = :c"),
                                          {"c": code})).scalar_one()
            await conn.execute(sa.text(
                "UPDATE postings SET amount = amount + :d WHERE account_id = :a AND entry_id = :e"),
                {"d": delta, "a": account, "e": _id(conn, first.id)})
            rows = (await conn.execute(sa.text(
                "SELECT p.entry_id, p.account_seq, p.amount, p.currency, e.hash AS entry_hash "
                "FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
                "WHERE p.account_id = :a ORDER BY p.account_seq"), {"a": account})).all()
            head, net, credits = chain.GENESIS, 0, 0
            for r in rows:
                net += r.amount
                credits -= r.amount
                head = chain.posting_hash(head, r.entry_hash, account, r.account_seq, r.amount,
                                          r.currency, net)
                await conn.execute(sa.text(
                    "UPDATE postings SET balance_after = :n, hash = :h WHERE account_id = :a "
                    "AND account_seq = :s"), {"n": net, "h": head, "a": account, "s": r.account_seq})
            await conn.execute(sa.text(
                "UPDATE account_balances SET posted_credits = :c, head_hash = :h "
                "WHERE account_id = :a"), {"c": credits, "h": head, "a": account})
        assert entry_hash  # the entry itself is untouched: its hash does not cover amounts

    plain = await _verify(db)
    assert plain.ok, plain.discrepancies
    report = await _verify(db, checkpoint)
    rewritten = [d for d in report.discrepancies if "rewritten" in d]
    assert len(rewritten) == 2, report.discrepancies
    assert any("account '2202.payable.s1' posting #3" in d for d in rewritten)
    assert all(chain.booked_text(checkpoint.head.taken_at) in d for d in rewritten)


async def test_old_checkpoints_verify_after_key_rotation(db):
    await _books(db, 1)
    old, new = signing.SigningKey.generate(), signing.SigningKey.generate()
    before = await _checkpoint(db, old)
    async with db.begin() as conn:
        await ledger.post(conn, capture("after-rotation", "5.00", "0.50"))
    after = await _checkpoint(db, new)
    assert before.head.key_id != after.head.key_id

    trusted = signing.trusted_keys([old.private.public_key(), new.private.public_key()])
    loaded = [load_checkpoint(cp.dumps(), trusted) for cp in (before, after)]
    assert loaded == [before, after]
    report = await _verify(db, *loaded)
    assert report.ok, report.discrepancies

    only_new = signing.trusted_keys([new.private.public_key()])
    with pytest.raises(ledger.CheckpointError, match=f"signed by key {old.key_id}, which is not"):
        load_checkpoint(before.dumps(), only_new)


@pytest.mark.parametrize("field,value", [
    (("checkpoint", "entry_count"), 2),
    (("checkpoint", "taken_at"), "2020-01-01T00:00:00.000000+00:00"),
    (("accounts", 2, "balance"), -1),
    (("accounts", 2, "head"), chain.GENESIS),
])
async def test_a_tampered_checkpoint_file_is_refused(db, field, value):
    await _books(db)
    key = signing.SigningKey.generate()
    checkpoint = await _checkpoint(db, key)
    doc = checkpoint.to_json()
    target = doc
    for step in field[:-1]:
        target = target[step]
    target[field[-1]] = value
    with pytest.raises(ledger.CheckpointError, match="signature does not verify|signed root"):
        load_checkpoint(json.dumps(doc), signing.trusted_keys([key.private.public_key()]))


async def test_one_suppliers_proof_checks_offline_and_shows_no_one_else(db):
    await _books(db)
    key = signing.SigningKey.generate()
    checkpoint = await _checkpoint(db, key)
    trusted = signing.trusted_keys([key.private.public_key()])
    proof = prove(checkpoint, "2202.payable.s1")
    text = proof.dumps()
    # the supplier's own leaf only: no other account's code, head or balance
    others = [leaf for leaf in checkpoint.leaves if leaf.code != "2202.payable.s1"]
    assert all(leaf.code not in text and leaf.head not in text for leaf in others)

    checked = load_proof(text, trusted)
    assert checked.leaf.balance == -(9700 + 9800 + 9900)
    assert ledger.from_minor(-checked.leaf.balance, "CNY") == cny("294.00")
    assert checked.head.root == checkpoint.head.root

    doc = json.loads(text)
    doc["account"]["balance"] -= 100  # a supplier shown more than they are owed
    with pytest.raises(ledger.CheckpointError, match="do not lead to the signed root"):
        load_proof(json.dumps(doc), trusted)
    doc = json.loads(text)
    doc["checkpoint"]["root"] = doc["path"][0]
    with pytest.raises(ledger.CheckpointError, match="signature does not verify"):
        load_proof(json.dumps(doc), trusted)
    with pytest.raises(ledger.CheckpointError, match="not in the checkpoint"):
        prove(checkpoint, "9999.nobody")


async def test_a_checkpoint_is_not_signed_over_a_balance_row_out_of_step(db):
    await _books(db, 1)
    async with db.begin() as conn:
        await conn.execute(sa.text(
            "UPDATE account_balances SET head_hash = :h WHERE account_id = "
            "(SELECT id FROM accounts WHERE code = '2202.payable.s1')"), {"h": chain.GENESIS})
    with pytest.raises(ledger.LedgerError, match="'2202.payable.s1'.*run verify"):
        await _checkpoint(db, signing.SigningKey.generate())
    async with db.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM ledger_checkpoints")) == 0


async def test_verify_names_a_posting_whose_entry_row_is_gone(db):
    """Deleting an entry row behind the triggers leaves its postings: verify() names the
    posting whose entry is gone, at its own sequence number (not as a gap after it)."""
    posted = await _books(db)
    middle = posted[1]
    async with insider(db) as conn:
        await conn.execute(sa.text("DELETE FROM journal_entries WHERE id = :e"),
                           {"e": _id(conn, middle.id)})
    report = await _verify(db)
    assert report.first_discrepancy is not None
    orphans = [d for d in report.discrepancies if "entry row is gone" in d]
    assert len(orphans) == 3, report.discrepancies
    assert any(d.startswith(f"account '1102.clearing.icbc' posting #2 (entry {middle.id})")
               for d in orphans)
    assert not any("jumps" in d for d in report.discrepancies)


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's recursive definition, to hold the iterative tree against."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(_rfc6962_root(leaves[:k]), _rfc6962_root(leaves[k:]))


def test_merkle_paths_prove_each_leaf_of_every_tree_size_and_nothing_else():
    for size in range(1, 34):
        leaves = [merkle.leaf_hash(str(n).encode()) for n in range(size)]
        root = merkle.root(leaves)
        assert root == _rfc6962_root(leaves)
        for index in range(size):
            path = merkle.audit_path(index, leaves)
            assert merkle.root_from_path(index, size, leaves[index], path) == root
            if size > 1:  # another leaf, or the leaf at another place, does not prove
                other = leaves[(index + 1) % size]
                assert merkle.root_from_path(index, size, other, path) != root
                assert merkle.root_from_path((index + 1) % size, size, leaves[index], path) != root
    assert merkle.root_from_path(3, 3, leaves[0], []) is None  # no such leaf
    # a leaf can never pass for an inner node: the two are hashed apart
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)


async def test_a_checkpoint_of_accounts_without_postings(db):
    await open_chart(db)
    key = signing.SigningKey.generate()
    checkpoint = await _checkpoint(db, key)
    assert checkpoint.head.entry_count == 0
    assert {(leaf.seq, leaf.head, leaf.balance) for leaf in checkpoint.leaves} == {
        (0, chain.GENESIS, 0)}
    loaded = load_checkpoint(checkpoint.dumps(), signing.trusted_keys([key.private.public_key()]))
    report = await _verify(db, loaded)
    assert report.ok, report.discrepancies


async def test_checkpoints_taken_while_writers_post_are_each_one_moment_of_the_books(db):
    """Heads, balances and the entry count are read as one snapshot: checkpoints taken
    between concurrent writers' commits each hold against the books afterwards, and each
    signs a balanced set of balances."""
    import asyncio

    await open_chart(db)
    key = signing.SigningKey.generate()

    async def writer(n: int) -> None:
        for i in range(8):
            await ledger.transact(db, lambda conn, i=i: ledger.post(
                conn, capture(f"w{n}-{i}", f"{10 + i}.00", "1.00",
                              supplier="2202.payable.s1" if n % 2 else "2202.payable.s2")))

    async def checkpointer() -> list[ledger.Checkpoint]:
        taken = []
        for _ in range(4):
            taken.append(await ledger.transact(db, lambda conn: take_checkpoint(conn, key)))
            await asyncio.sleep(0)
        return taken

    *_, taken = await asyncio.gather(*(writer(n) for n in range(3)), checkpointer())
    for checkpoint in taken:
        by_currency: dict[str, int] = {}
        for leaf in checkpoint.leaves:
            by_currency[leaf.currency] = by_currency.get(leaf.currency, 0) + leaf.balance
        assert set(by_currency.values()) == {0}, checkpoint.head.label
        # every signed entry's postings are in the signed sequence numbers: 3 legs an entry
        assert sum(leaf.seq for leaf in checkpoint.leaves) == 3 * checkpoint.head.entry_count
    report = await _verify(db, *taken)
    assert report.ok, report.discrepancies
    assert report.entries == 24
