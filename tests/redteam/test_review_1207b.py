"""Red team (second review of the 2026-12-07 fixes: the notification rate limit's address
forms, the janitor's "not found" for a created attempt, four eyes on credit). Each test
here fails on the code as reviewed; its docstring says what goes wrong and why it matters.
SQLite and PostgreSQL unless a test says otherwise."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

import gateways
from tests.api.test_payments import shop

# -- 1. the notification rate limit: what an address is ----------------------------------


async def _forged_from(s: Any, host: str, times: int) -> list[int]:
    """`times` forged notifications to restbank from client address `host`."""
    transport = httpx.ASGITransport(app=s.app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as c:
        return [(await c.post("/v1/notifications/restbank", content=b"garbage")).status_code
                for _ in range(times)]


async def test_ipv4_clients_behind_nat64_are_not_one_address(db):
    """`_source_of` (paycore/api/payments.py) unwraps only the IPv4-mapped form
    (::ffff:a.b.c.d); every other IPv6 address is counted by its /64. A server that is
    reached over IPv6 only and serves IPv4 clients through NAT64/SIIT sees each IPv4 client
    as 64:ff9b::a.b.c.d (RFC 6052's well-known prefix; RFC 6145's ::ffff:0:a.b.c.d and the
    old ::a.b.c.d alike): one /64, `64:ff9b::/64`, for the whole IPv4 Internet. So one
    attacker's forged notifications (the limit's worth per window) make every bank that
    reaches paycore over IPv4 a 429 until the window ends — its customers' payments left
    pending until the janitor asks. Here 198.51.100.7 spends the limit and 203.0.113.9, a
    bank, is refused unread. The embedded IPv4 address should be the bucket (and a 6to4
    address's, 2002:a.b.c.d::/48, which otherwise gives one IPv4 host 65,536 buckets)."""
    async with shop(db, notification_rate_limit=2,
                    notification_rate_window_seconds=3600) as s:
        attacker = await _forged_from(s, "64:ff9b::c633:6407", 3)  # 198.51.100.7
        assert attacker[-1] == 429, attacker
        bank = await _forged_from(s, "64:ff9b::cb00:7109", 1)  # 203.0.113.9
        assert bank != [429], "203.0.113.9 was refused for 198.51.100.7's forgeries"


async def test_a_6to4_host_is_one_address(db):
    """The other way round: one IPv4 host's 6to4 prefix (2002:c633:6407::/48 for
    198.51.100.7) holds 65,536 /64s, each a bucket of its own, so the per-address limit is
    65,536 times the configured one for anyone who sends from 6to4 addresses. (Teredo,
    2001:0::/32, errs the other way: its /64 is the Teredo server's, shared by all its
    clients, whose own IPv4 address is in the last 32 bits.)"""
    async with shop(db, notification_rate_limit=2,
                    notification_rate_window_seconds=3600) as s:
        codes = []
        for subnet in range(1, 5):
            codes += await _forged_from(s, f"2002:c633:6407:{subnet:x}::1", 1)
        assert 429 in codes, f"four /64s of one 6to4 host all passed a limit of 2: {codes}"


# -- 3. the janitor: "not found" for a created payment attempt ------------------------------


async def test_a_look_ahead_pass_past_the_intents_expiry_does_not_fail_an_attempt_in_flight(db):
    """13a9f8a makes "not found" fail a created attempt only once its call has had
    UNSEEN_AFTER of real time — but `_settle_attempt` (gateways/janitor.py) still fails it
    when `now >= intent.expires_at`, and that `now` is the caller's look-ahead, and before
    it `expire_intents(now)` (gateways/checkout.py) expires a created intent on the same
    look-ahead. So the gap the fix closed is open again for any catch-up pass (`paycore
    payments janitor --now ...`, "look ahead to what falls due later") that looks past the
    intent's expiry (30 min by default; 60 s at least through the API): run between
    create's commit and the bank call, it expires the intent and fails the attempt; the
    bank then opens the order, `_send_attempt` cannot record it (ConcurrentTransition
    created -> pending) and the customer is turned away with an error, a live order left
    at the bank. The same hook as tests/redteam/test_concurrency.py's, 40 minutes ahead
    instead of 10. What may be in flight should be judged on real time: the intent's
    expiry and `expire_intents` for a created intent whose attempt's call is recent as
    much as UNSEEN_AFTER."""
    from tests.gateways.core_env import checkout_env

    async with checkout_env(db, ("restbank",)) as env:
        await env.terms()
        ran: list[Any] = []
        real_call = env.banks.call

        async def call(code: str, operation: Any, *, moves_money: bool) -> Any:
            if moves_money and not ran:
                ran.append(await gateways.run_janitor(
                    db, env.banks, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=40)))
            return await real_call(code, operation, moves_money=moves_money)

        env.banks.call = call  # type: ignore[method-assign]
        try:
            checkout = await env.checkout("50.00")
        except gateways.ConcurrentTransition as exc:
            raise AssertionError(f"the checkout failed after the bank opened its order: "
                                 f"{exc}") from exc
        assert ran, "the janitor pass did not run in the gap"
        assert checkout.intent.status is gateways.IntentState.PENDING, checkout.intent


# -- 4. four eyes on credit: the command line ---------------------------------------------


def test_one_shell_does_not_apply_for_a_loan_and_approve_it(tmp_path, monkeypatch):
    """`paycore loans apply` (paycore/commands/lending.py) names nobody: the application's
    first event is recorded as `applicant` (LoanApplication.applied_by's default), so the
    SelfReview check that 4e4b273 added to lending.review compares the officer with
    nobody. Risk officer risk.li applies for supplier sup-9 on the command line and, a
    minute later, approves the queued application herself with `loans decide --as risk.li`
    (her own password): the loan is approved — and disbursable — on one person's word,
    while the API now refuses exactly that (403 four-eyes). Every other maker on the
    command line (`payments request-payout`, `beneficiaries add`) is a staff user proved
    with `--as`; `loans apply` should be too, and record `user:<name>` as the applicant."""
    from typer.testing import CliRunner

    from paycore.cli import app

    runner = CliRunner()
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite")
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    day = dt.date(2026, 3, 2)

    def d(n: int) -> str:
        return (day + dt.timedelta(days=n)).isoformat()

    def ok(*args: str, env: dict[str, str] | None = None) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    ok("db", "upgrade")
    ok("borrowers", "register", "sup-9", "Test Supplier", "--onboarded", "2024-01-01")
    csv = tmp_path / "trade.csv"
    rows = ["borrower_id,kind,ref,date,buyer,amount,currency"]
    rows += [f"sup-9,sale,s{m},2025-{m:02d}-15,,100000.00,CNY" for m in range(9, 13)]
    rows += [f"sup-9,sale,t{m},2026-{m:02d}-15,,100000.00,CNY" for m in (1, 2)]
    csv.write_text("\n".join(rows) + "\n")
    ok("borrowers", "import", str(csv), "--on", d(0))
    staff = {"PAYCORE_STAFF_PASSWORD": "risk-li-passphrase-1"}
    ok("staff", "add", "risk.li", "--role", "risk", env=staff)

    # risk.li's shell: she applies (the figures are ten days old: to the review queue) ...
    applied = runner.invoke(app, ["loans", "apply", "sup-9", "20000", "30", "--id", "L9",
                                  "--on", d(10)], env=staff)
    if applied.exit_code != 0:
        return  # refused: the command line asks who applies — fine
    assert "manual_review" in applied.output, applied.output
    # ... and decides it, as herself
    decided = runner.invoke(app, ["loans", "decide", "L9", "approve", "--comment", "fine",
                                  "--on", d(10), "--as", "risk.li"], env=staff)
    assert decided.exit_code != 0 and "now approved" not in decided.output, (
        f"risk.li applied for L9 and approved it herself: {decided.output}")
