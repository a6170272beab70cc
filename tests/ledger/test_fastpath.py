"""PostgreSQL's one-round-trip write path (`ledger_post_entries` for a batch, migration 0002;
`ledger_post_entry` for one entry, 0014) keeps every promise of the Python write path,
which SQLite still uses: the same hashes, byte for byte; the same precise errors, in the
same order; a refusal writes nothing and leaves the caller's transaction usable. Each
database test runs on both databases, so the paths are held to one standard."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

import ledger
from ledger import EntryRequest, Posting, chain, ddl, fastpath, store
from ledger.books import LockedAccounts
from ledger.entries import Draft, Leg, write_drafts
from ledger.schema import journal_entries
from tests.ledger.chart import capture, cny, open_chart
from tests.ledger.test_database_rules import _raw_entry as raw_entry
from tests.ledger.test_database_rules import _raw_posting as raw_posting
from tests.ledger.test_database_rules import _write_by_hand as write_by_hand
from tests.ledger.test_proof import tamper

AWKWARD = ['plain', '', 'café 中文 ✓', 'quote " backslash \\ slash /', 'line\nbreak\ttab\x01',
           '\u2028 separator', '{"not": "json"}']


@pytest.mark.parametrize("text", AWKWARD)
def test_hash_pieces_join_to_the_python_hashes(text):
    """What the SQL function joins (pieces + fields it learns under the locks) is exactly
    the text `request_hash` and `entry_hash` digest."""
    metadata = {text: [1, text, {"z": None, "a": True}], "b": text}
    legs = [(7, 12345, "CNY"), (12, -12345, "CNY"), (3, 1, "USD"), (4, -1, "USD")]
    for effective in (None, dt.date(2026, 11, 1)):
        head, tail = chain.request_parts(
            kind=text, description=text, effective_date=effective, external_ref=text or None,
            metadata=metadata, reverses_entry_id=None)
        joined = chain._digest(head + chain.legs_json(legs) + tail)
        assert joined == chain.request_hash(
            kind=text, description=text, effective_date=effective, external_ref=text or None,
            metadata=metadata, reverses_entry_id=None, legs=legs)
    entry_id, booked = uuid.uuid4(), dt.datetime(2026, 11, 25, 3, 4, 5, 60, tzinfo=dt.UTC)
    head, middle, tail = chain.entry_parts(
        entry_id=entry_id, idempotency_key=text, kind=text, description=text,
        reverses_entry_id=None, external_ref=None, metadata=metadata)
    joined = chain._digest(f'{head}{"ab" * 32}{middle}"2026-11-01","{chain.booked_text(booked)}"'
                           f'{tail}')
    assert joined == chain.entry_hash(
        entry_id=entry_id, idempotency_key=text, request_hash="ab" * 32, kind=text,
        description=text, effective_date=dt.date(2026, 11, 1), booked_at=booked,
        reverses_entry_id=None, external_ref=None, metadata=metadata)


async def test_awkward_entries_verify_and_replay_by_code_or_id(db):
    """Entries full of text that is easy to encode differently: the chain the writer stored
    is the chain verify() recomputes in Python, and naming accounts by code or by id is the
    same request."""
    chart = await open_chart(db)
    clearing, payable = chart["1102.clearing.icbc"], chart["2202.payable.s1"]
    requests = [
        EntryRequest(f"awkward-{n}:{text}", f"kind {text}", [
            Posting(clearing.code if n % 2 else clearing.id, debit=cny("1.25")),
            Posting(payable.id if n % 2 else payable.code, credit=cny("1.25")),
        ], description=text, external_ref=text or None,
            metadata={text: [n, text], "nested": {"b": 1, "a": [None, True]}},
            effective_date=dt.date(2026, 11, 1) if n % 3 else None)
        for n, text in enumerate(AWKWARD)
    ]
    async with db.begin() as conn:
        posted = [await ledger.post(conn, requests[0])]
        posted += await ledger.post_many(conn, requests[1:])
    async with db.begin() as conn:
        # the same requests with every account named the other way round
        flipped = [EntryRequest(r.idempotency_key, r.kind, [
            Posting(chart[p.account].id if isinstance(p.account, str) else
                    next(a.code for a in chart.values() if a.id == p.account),
                    debit=p.debit, credit=p.credit) for p in r.postings],
            description=r.description, external_ref=r.external_ref, metadata=r.metadata,
            effective_date=r.effective_date) for r in requests]
        again = await ledger.post_many(conn, flipped)
    assert [e.id for e in again] == [e.id for e in posted]
    assert all(e.replayed for e in again) and not any(e.replayed for e in posted)
    assert [p.account_seq for e in posted for p in e.postings] == [
        n for n in range(1, len(AWKWARD) + 1) for _ in range(2)]
    async with db.connect() as conn:
        stored = await ledger.load_entries(conn, [e.id for e in posted])
        report = await ledger.verify(conn)
    assert report.ok, report.discrepancies
    assert report.entries == len(AWKWARD)
    for mine, theirs in zip(posted, stored, strict=True):
        assert (mine.booked_at, mine.effective_date, mine.metadata, mine.postings) == (
            theirs.booked_at, theirs.effective_date, theirs.metadata, theirs.postings)


async def test_a_tampered_metadata_field_is_named(db):
    await open_chart(db)
    async with db.begin() as conn:
        entry = await ledger.post(conn, capture("cap-1", "10.00", "1.00",
                                                metadata={"order": "ä-1"}))
    async with db.begin() as conn:
        await tamper(conn, "UPDATE journal_entries SET metadata = :m WHERE idempotency_key = 'cap-1'",
                     {"m": '{"order": "ä-2"}'})
    async with db.connect() as conn:
        report = await ledger.verify(conn)
    assert report.first_discrepancy is not None
    assert str(entry.id) in report.first_discrepancy


async def test_a_refused_batch_writes_nothing_and_the_transaction_goes_on(db):
    """The refusal comes from the third entry; the first two are not written, and the
    caller's transaction can still post and commit."""
    chart = await open_chart(db)
    fees = "6602.expense.bank_fees"
    async with db.begin() as conn:
        await ledger.close_account(conn, fees)
    batch = [capture("a", "10.00", "1.00"), capture("b", "5.00", "0.50"),
             EntryRequest("c", "fee", [Posting(fees, debit=cny("0.10")),
                                       Posting("1102.clearing.icbc", credit=cny("0.10"))])]
    async with db.begin() as conn:
        with pytest.raises(ledger.AccountClosed, match=fees):
            await ledger.post_many(conn, batch)
        with pytest.raises(ledger.CurrencyMismatch) as mismatch:
            await ledger.post(conn, EntryRequest("d", "x", [
                Posting("1102.clearing.icbc", debit=ledger.from_minor(5, "USD")),
                Posting("1102.clearing.usd", credit=ledger.from_minor(5, "USD"))]))
        assert (mismatch.value.account_code, mismatch.value.given_currency) == (
            "1102.clearing.icbc", "USD")
        with pytest.raises(ledger.BalanceLimitExceeded) as limit:
            await ledger.post(conn, EntryRequest("e", "payout", [
                Posting("2202.payable.s1", debit=cny("9.01")),
                Posting("1102.clearing.icbc", credit=cny("9.01"))]))
        with pytest.raises(ledger.UnknownAccount) as unknown:
            await ledger.post_many(conn, [capture("f", "1.00", "0.10"), EntryRequest("g", "x", [
                Posting(999_999, debit=cny("1.00")), Posting("nope", credit=cny("1.00"))])])
        assert unknown.value.refs == [999_999, "nope"]
        kept = await ledger.post(conn, capture("a", "10.00", "1.00"))
    assert (limit.value.account_code, limit.value.shortfall) == ("2202.payable.s1", "9.01 CNY")
    assert limit.value.idempotency_key == "e"
    async with db.connect() as conn:
        keys = (await conn.execute(sa.text(
            "SELECT idempotency_key FROM journal_entries"))).scalars().all()
        clearing = await ledger.balance(conn, chart["1102.clearing.icbc"].id)
        report = await ledger.verify(conn)
    assert keys == ["a"] and not kept.replayed
    assert clearing.posted == cny("10.00")
    assert report.ok, report.discrepancies


async def test_the_write_path_plans_look_ups_whatever_the_statistics_say(db):
    """PostgreSQL: the write function and the two statement triggers run without
    sequential scans (migration 0008), so a session that planned them while the ledger was
    small does not go on scanning tables that grew since; they still post (SQLite has no
    plans to pin, and posts the same entry)."""
    await open_chart(db)
    if db.dialect.name == "postgresql":
        async with db.connect() as conn:
            config = dict((await conn.execute(sa.text(
                "SELECT p.proname, array_to_string(p.proconfig, ',') FROM pg_proc p"
                " WHERE p.pronamespace = current_schema()::regnamespace AND p.proname IN"
                " ('ledger_post_entries', 'ledger_post_entry', 'ledger_check_new_postings',"
                "  'ledger_check_new_entries')"))).all())
        assert sorted(config) == ["ledger_check_new_entries", "ledger_check_new_postings",
                                  "ledger_post_entries", "ledger_post_entry"]
        assert all("enable_seqscan=off" in (c or "") for c in config.values()), config
        # the triggers look up each new row by key (0009): never a hash of a whole table
        for trigger in ("ledger_check_new_entries", "ledger_check_new_postings"):
            assert {"enable_hashjoin=off", "enable_mergejoin=off", "jit=off"} <= set(
                config[trigger].split(",")), config
    async with db.begin() as conn:
        entry = await ledger.post(conn, capture("plans-1", "10.00", "1.00"))
    assert not entry.replayed and len(entry.postings) == 3


def _slipped_past_validation(key: str, legs: list[tuple[str, int, str]]) -> Draft:
    """A draft that `Draft.from_request` would have refused (a bug in a caller of the write
    path, or a hand-made batch): the database side must refuse it on its own."""
    return Draft(idempotency_key=key, kind="bug", effective_date=None,
                 legs=[Leg(code, amount, currency) for code, amount, currency in legs])


SLIPPED = {
    "unbalanced": [("1102.clearing.icbc", 1000, "CNY"), ("2202.payable.s1", -999, "CNY")],
    "balanced only in total": [("1102.clearing.icbc", 500, "CNY"),
                               ("2202.payable.usd", -500, "USD")],
    "one leg": [("1102.clearing.icbc", 1000, "CNY")],
}


@pytest.mark.parametrize("case", sorted(SLIPPED))
async def test_an_entry_that_slipped_past_validation_is_refused_by_the_database(db, case):
    """On PostgreSQL the write function proves each entry has at least two legs balanced per
    currency itself (from migration 0011 the triggers skip its statements); on SQLite the
    triggers refuse it. Either way nothing is written and the books stay provable."""
    await open_chart(db)
    draft = _slipped_past_validation(f"slipped-{case}", SLIPPED[case])
    if db.dialect.name == "postgresql":
        async with db.begin() as conn:
            expected = ledger.UnbalancedEntry if case != "one leg" else ledger.InvalidRequest
            with pytest.raises(expected) as refused:
                await fastpath.post_entries(await store.driver(conn), [draft])
            if case == "unbalanced":
                assert refused.value.differences == {"CNY": "0.01"}
            elif case == "balanced only in total":
                assert refused.value.differences == {"CNY": "5.00", "USD": "-5.00"}
            else:
                assert "at least two postings, got 1" in str(refused.value)
            # a refusal: nothing written, and the caller's transaction goes on
            await ledger.post(conn, capture("after", "10.00", "1.00"))
    else:
        # SQLite's trigger aborts the statement; the transaction is rolled back
        with pytest.raises(sa.exc.IntegrityError, match="balance|two postings"):
            async with db.begin() as conn:
                books = await LockedAccounts.lock(conn, (leg.account for leg in draft.legs))
                await write_drafts(conn, [draft], books)
    async with db.connect() as conn:
        keys = (await conn.execute(sa.text("SELECT idempotency_key FROM journal_entries"))
                ).scalars().all()
        report = await ledger.verify(conn)
    assert f"slipped-{case}" not in keys
    assert report.ok, report.discrepancies


async def test_a_malformed_batch_is_refused_whole(db):
    """PostgreSQL: a batch whose legs are not their entries' own (a leg given to another
    entry, or legs the entries do not account for) is an error before anything is written,
    so the write function can never attach postings to an entry it did not check. (SQLite
    has no write function; its triggers refuse postings added to an entry, tested in
    test_database_rules.)"""
    chart = await open_chart(db)
    clearing, payable = chart["1102.clearing.icbc"].id, chart["2202.payable.s1"].id
    if db.dialect.name != "postgresql":
        async with db.begin() as conn:
            await ledger.post(conn, capture("ok", "1.00", "0.10"))
        return

    def batch(legs: list[list[object]], nlegs: int = 2) -> str:
        entry = ["k-1", str(uuid.uuid4()), "bug", "", None, None, "{}", "[", "]", "h", "m",
                 "t", nlegs]
        return json.dumps([[entry], legs])

    wrong_entry = [[clearing, None, 100, "CNY", 1], [payable, None, -100, "CNY", 2]]
    unowned = [[clearing, None, 100, "CNY", 1], [payable, None, -100, "CNY", 1],
               [payable, None, 100, "CNY", 1], [clearing, None, -100, "CNY", 1]]
    for text, message in ((batch(wrong_entry), "belongs to entry 1"),
                          (batch(unowned), "the entries own 2 legs, the batch has 4")):
        with pytest.raises(DBAPIError, match=message):
            async with db.begin() as conn:
                await conn.exec_driver_sql(
                    "SELECT o_status FROM ledger_post_entries($1::jsonb)", (text,))
    async with db.connect() as conn:
        assert (await conn.scalar(sa.text("SELECT count(*) FROM postings"))) == 0


async def test_only_the_write_functions_own_statements_skip_the_triggers(db):
    """PostgreSQL: the write functions (a batch's and one entry's) run as the NOLOGIN writer
    role with their search_path pinned to their own schema, and the two statement triggers
    skip that role alone; a hand-written entry is still re-checked (and refused when it does
    not balance)."""
    chart = await open_chart(db)
    if db.dialect.name == "postgresql":
        async with db.connect() as conn:
            functions = (await conn.execute(sa.text(
                "SELECT p.proname, pg_get_userbyid(p.proowner), p.prosecdef,"
                " array_to_string(p.proconfig, ','), current_schema(),"
                " EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0)"
                " FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace"
                " AND p.proname IN ('ledger_post_entries', 'ledger_post_entry')"))).all()
            whens = (await conn.execute(sa.text(
                "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
                " JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE c.relnamespace = current_schema()::regnamespace"
                " AND t.tgname IN ('postings_check', 'journal_entries_balanced')"))).all()
        # each writes with the writer's rights: not every role may call it
        assert sorted(f[0] for f in functions) == ["ledger_post_entries", "ledger_post_entry"]
        for _, owner, definer, config, schema, public in functions:
            assert (owner, definer, public) == (ddl.WRITER_ROLE, True, False)
            assert f"search_path={schema}, pg_temp" in config, config
        assert len(whens) == 2
        for name, definition in whens:
            assert f"WHEN ((CURRENT_USER <> '{ddl.WRITER_ROLE}'::name))" in definition, name
    entry_id = uuid.uuid4()
    with pytest.raises(DBAPIError, match="balance"):
        async with db.begin() as conn:
            await write_by_hand(conn, raw_entry(entry_id, "by-hand"), [
                raw_posting(entry_id, chart["1102.clearing.icbc"].id, 100, 1),
                raw_posting(entry_id, chart["2202.payable.s1"].id, -99, 1)])
    async with db.begin() as conn:
        posted = await ledger.post(conn, capture("by-function", "10.00", "1.00"))
    assert not posted.replayed


# --- every write path refuses in the same order ------------------------------------------
#
# PostgreSQL has two write functions, `ledger_post_entry` (one entry: every `post`,
# migration 0014) and `ledger_post_entries` (a batch); SQLite, and reversals and holds
# everywhere, use the Python write path. Each case below breaks two rules at once (or
# replays an entry whose account has since been closed), so only the same order of checks
# gives the same answer on every path.
FEES, CLEARING, USD_CLEARING = "6602.expense.bank_fees", "1102.clearing.icbc", "1102.clearing.usd"
S1, S2, COMMISSION = "2202.payable.s1", "2202.payable.s2", "6001.income.commission"


def _draft(key: str, *legs: tuple[object, int, str]) -> Draft:
    return Draft(idempotency_key=key, kind="order.test", effective_date=None,
                 legs=[Leg(account, amount, currency)  # type: ignore[arg-type]
                       for account, amount, currency in legs])


async def _fees_used_then_closed(conn) -> None:
    """An entry `k1` on the bank-fees account, undone by `k2`, and the account closed."""
    for key, amount in (("k1", 100), ("k2", -100)):
        await _python_path(conn, _draft(key, (FEES, amount, "CNY"), (CLEARING, -amount, "CNY")))
    await ledger.close_account(conn, FEES)


async def _k1_posted(conn) -> None:
    await _python_path(conn, _draft("k1", (FEES, 100, "CNY"), (CLEARING, -100, "CNY")))


async def _fees_closed(conn) -> None:
    await ledger.close_account(conn, FEES)


async def _nothing(conn) -> None:
    return None


#: name -> (what is on the books first, the draft, whether Draft.from_request would pass it)
ORDER_CASES = {
    "an unknown account, before a closed one": (_fees_closed, _draft(
        "u", (FEES, 100, "CNY"), ("nope", -50, "CNY"), (999_999, -50, "CNY")), True),
    "a replay, although its account is closed now": (_fees_used_then_closed, _draft(
        "k1", (FEES, 100, "CNY"), (CLEARING, -100, "CNY")), True),
    "a key used for another request, before a wrong currency": (_k1_posted, _draft(
        "k1", (CLEARING, 100, "USD"), (USD_CLEARING, -100, "USD")), True),
    "a wrong currency on leg 1, before a closed account on leg 3": (_fees_closed, _draft(
        "c", (CLEARING, 100, "USD"), (USD_CLEARING, -100, "USD"), (FEES, 100, "CNY"),
        (CLEARING, -100, "CNY")), True),
    "a closed account, before its wrong currency": (_fees_closed, _draft(
        "d", (FEES, 100, "USD"), (USD_CLEARING, -100, "USD")), True),
    "two limits broken: the lower account id is named": (_nothing, _draft(
        "l", (S2, 100, "CNY"), (S1, 250, "CNY"), (CLEARING, -350, "CNY")), True),
    "one account twice in an entry, posted": (_k1_posted, _draft(
        "twice", (CLEARING, 500, "CNY"), (CLEARING, -120, "CNY"), (COMMISSION, -380, "CNY")),
        True),
    "too few legs, before a closed account": (_fees_closed, _draft(
        "f", (FEES, 100, "CNY")), False),
    "unbalanced, before a broken limit": (_nothing, _draft(
        "b", (S1, 100, "CNY"), (CLEARING, -99, "CNY")), False),
    "a closed account, before unbalanced": (_fees_closed, _draft(
        "e", (FEES, 100, "CNY"), (CLEARING, -99, "CNY")), False),
}


async def _python_path(conn, draft: Draft) -> ledger.JournalEntry | uuid.UUID:
    books = await LockedAccounts.lock(conn, (leg.account for leg in draft.legs))
    [entry] = await write_drafts(conn, [draft], books)
    return entry.id if entry.replayed else entry


async def _one_entry_function(conn, draft: Draft) -> ledger.JournalEntry | uuid.UUID:
    return await fastpath.post_entry(await store.driver(conn), draft)


async def _batch_function(conn, draft: Draft) -> ledger.JournalEntry | uuid.UUID:
    [written] = await fastpath.post_batch(await store.driver(conn), [draft])
    return written


async def _outcome(db, case: str, write) -> tuple[object, ...]:
    """What `write` answers to the case's draft, on books set up in the same transaction,
    which is then rolled back (after `verify`, when something was written)."""
    setup, draft, _ = ORDER_CASES[case]
    async with db.connect() as conn:
        await conn.begin()
        await setup(conn)
        replayed = await conn.scalar(sa.select(journal_entries.c.id).where(
            journal_entries.c.idempotency_key == draft.idempotency_key))
        try:
            written = await write(conn, draft)
            # what was written proves out, chains included, before it is rolled back
            report = await ledger.verify(conn)
        except ledger.LedgerError as refused:
            return type(refused).__name__, str(refused)
        finally:
            await conn.rollback()
    assert report.ok, report.discrepancies
    if isinstance(written, uuid.UUID):
        return "replayed", written == replayed
    return "posted", [(p.account_code, p.amount, p.account_seq, p.balance_after)
                      for p in written.postings]


@pytest.mark.parametrize("case", list(ORDER_CASES))
async def test_every_write_path_refuses_in_the_same_order(db, case):
    await open_chart(db)
    valid = ORDER_CASES[case][2]
    outcomes = {}
    if valid:
        outcomes["python"] = await _outcome(db, case, _python_path)
    if db.dialect.name == "postgresql":
        outcomes["one entry"] = await _outcome(db, case, _one_entry_function)
        outcomes["batch"] = await _outcome(db, case, _batch_function)
    if not outcomes:
        # SQLite: the Python path trusts Draft.from_request, which refuses this draft; passed
        # one anyway, it still writes nothing (a check of its own, or SQLite's triggers)
        draft = ORDER_CASES[case][1]
        with pytest.raises((ledger.LedgerError, sa.exc.IntegrityError)):
            async with db.begin() as conn:
                await _python_path(conn, draft)
        async with db.connect() as conn:
            assert (await conn.scalar(sa.select(sa.func.count()).select_from(journal_entries)
                                      .where(journal_entries.c.idempotency_key
                                             == draft.idempotency_key))) == 0
        return
    assert len(set(map(repr, outcomes.values()))) == 1, outcomes
    expected = {
        "an unknown account, before a closed one": (
            "UnknownAccount", "no such account: 999999, 'nope'"),
        "a replay, although its account is closed now": ("replayed", True),
        "a key used for another request, before a wrong currency": ("IdempotencyConflict",),
        "a wrong currency on leg 1, before a closed account on leg 3": ("CurrencyMismatch",),
        "a closed account, before its wrong currency": ("AccountClosed",),
        "two limits broken: the lower account id is named": ("BalanceLimitExceeded",),
        "one account twice in an entry, posted": ("posted", [
            (CLEARING, 500, 2, 400), (CLEARING, -120, 3, 280), (COMMISSION, -380, 1, -380)]),
        "too few legs, before a closed account": ("InvalidRequest",),
        "unbalanced, before a broken limit": ("UnbalancedEntry",),
        "a closed account, before unbalanced": ("AccountClosed",),
    }[case]
    outcome = next(iter(outcomes.values()))
    assert outcome[:len(expected)] == expected, outcome
    if expected[0] == "CurrencyMismatch":
        assert CLEARING in outcome[1] and "USD" in outcome[1]
    if expected[0] == "BalanceLimitExceeded":
        assert S1 in outcome[1] and "2.50" in outcome[1] and S2 not in outcome[1]


async def test_the_one_entry_function_refuses_a_malformed_call(db):
    """PostgreSQL: legs whose arrays disagree in length, or lack an amount or a currency,
    are an error before anything is read or written (the client never makes one)."""
    chart = await open_chart(db)
    if db.dialect.name != "postgresql":
        return
    clearing, payable = chart[CLEARING].id, chart[S1].id
    call = ("SELECT o_status FROM ledger_post_entry('k', gen_random_uuid(), 'bug', '', NULL,"
            " NULL, '{}', '[', ']', 'h', 'm', 't', :ids, :codes, :amounts, :currencies)")
    for ids, codes, amounts, currencies in (
        ([clearing, payable], [None], [100, -100], ["CNY", "CNY"]),
        ([clearing, payable], [None, None], [100, None], ["CNY", "CNY"]),
        ([clearing, payable], [None, None], [100, -100], ["CNY"]),
        ([clearing, payable], [None, None], None, ["CNY", "CNY"]),
    ):
        with pytest.raises(DBAPIError, match="each leg needs an account, an amount and a"):
            async with db.begin() as conn:
                await conn.execute(sa.text(call), {
                    "ids": ids, "codes": codes, "amounts": amounts, "currencies": currencies})
    async with db.connect() as conn:
        assert (await conn.scalar(sa.text("SELECT count(*) FROM journal_entries"))) == 0
