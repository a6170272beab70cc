"""The supplier settlement run: what the marketplace owes each supplier first repays their
loans, and only the rest is paid out (DESIGN.md §5, issue #5).

For each supplier, in ONE transaction:

1. available = the posted credit balance of `2202.payable.<supplier>` less the payouts
   already on hold against it;
2. lending applies what the settlement policy selects of it to the supplier's loans, as one
   balanced entry (Dr supplier payable, Cr the loan receivables in waterfall order);
3. the rest goes out through `gateways.request_supplier_payout` — the same rules as a
   payout a person asks for: only to the supplier's verified account in the register,
   past its cooling-off, from its own payable (a hold Dr the payable, Cr
   1103.clearing.payout), and waiting for a second person's approval above the
   configured threshold; the bank is called later by `submit_payouts`;
4. lending records (settlement id, supplier) with the amounts: running the same
   settlement again finds the record and posts nothing.

A supplier without a usable account (none registered, unverified, cooling off, or
suspended after a payout to it came back) keeps the remainder on its payable, with the
reason in the result's `note`; the next run pays it. A loan disbursement to the supplier
that came back is unwound before anything else (paycore.disbursement); one that cannot
be unwound (repaid since, or its proceeds gone) leaves that supplier unsettled, with the
reason in `note`, for a person — the run goes on with the others.
This module is where lending and gateways meet; neither imports the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import gateways
import ledger
import lending
from lending import LendingConfig
from paycore.disbursement import refuse_payout_over_returned_proceeds

__all__ = ["SettlementRun", "SupplierSettlement", "payout_id_for",
           "run_settlement", "settle_supplier", "suppliers_with_payables"]

log = structlog.get_logger("paycore.settlement")

PAYABLE_PREFIX = "2202.payable."


@dataclass(frozen=True)
class SupplierSettlement:
    settlement_id: str
    supplier_id: str
    currency: str
    available_minor: int
    offset_minor: int
    payout_minor: int
    payout_id: str | None
    loans_repaid: tuple[str, ...] = ()
    #: True when this settlement had already been run for the supplier: nothing posted
    replayed: bool = False
    note: str = ""
    #: True when this supplier could not be settled in this run (the note says why):
    #: nothing of theirs was written, and a run of the same settlement id tries again
    failed: bool = False


@dataclass
class SettlementRun:
    settlement_id: str
    on: dt.date
    suppliers: list[SupplierSettlement] = field(default_factory=list)

    @property
    def offset_minor(self) -> int:
        return sum(s.offset_minor for s in self.suppliers)

    @property
    def payout_minor(self) -> int:
        return sum(s.payout_minor for s in self.suppliers)

    @property
    def failed(self) -> list[SupplierSettlement]:
        return [s for s in self.suppliers if s.failed]


def payout_id_for(settlement_id: str, supplier_id: str) -> str:
    """Our payout id (the bank's end-to-end id): at most 64 characters, stable, and one per
    (settlement, supplier) pair.

    `<settlement>-<supplier>` when the settlement id holds no `-` (the supplier is all after
    the first `-`, so two pairs never meet) and that fits. Otherwise `s-a` + `b` and `s` +
    `a-b` would both read `s-a-b` (the second supplier's payout a conflict that stopped the
    run), so the id is `stl-` and a digest of both ids with the settlement's length; `stl`
    is no settlement id of the first form, so the two forms never meet either. A supplier
    already settled keeps the payout id its settlement record holds, whichever form."""
    raw = f"{settlement_id}-{supplier_id}"
    if "-" not in settlement_id and settlement_id != "stl" and len(raw) <= 64:
        return raw
    pair = f"{len(settlement_id)}:{settlement_id}:{supplier_id}"
    return "stl-" + hashlib.sha256(pair.encode()).hexdigest()[:40]


async def settle_supplier(
    conn: AsyncConnection,
    settlement_id: str,
    supplier_id: str,
    on: dt.date,
    config: LendingConfig,
    *,
    payable_account: str | None = None,
    banks: tuple[str, ...] = (),
    controls: gateways.PayoutControls | None = None,
    actor: str = "system:settlement",
    now: dt.datetime | None = None,
) -> SupplierSettlement:
    """Settle one supplier in the caller's transaction (see the module docstring)."""
    if not settlement_id:
        raise lending.InvalidInput("a settlement needs an id")
    payable = payable_account or f"{PAYABLE_PREFIX}{supplier_id}"
    done = await lending.find_settlement(conn, settlement_id, supplier_id)
    account = await ledger.get_account(conn, payable)
    if done is not None:
        return SupplierSettlement(settlement_id, supplier_id, account.currency,
                                  done.available_minor, done.offset_minor, done.payout_minor,
                                  done.payout_id, replayed=True, note="already settled")
    # a loan disbursement that came back is unwound first: its money is back on the
    # payable, and must neither repay the loan it never funded nor be paid out as sales.
    # One that cannot be unwound leaves this supplier's payable untouched (no offset, no
    # payout, nothing recorded: the next run settles it once a person has) — and the run
    # goes on to the other suppliers
    try:
        await refuse_payout_over_returned_proceeds(conn, supplier_id, config=config)
    except gateways.PayoutBlocked as exc:
        log.warning("settlement.supplier_blocked", settlement_id=settlement_id,
                    supplier_id=supplier_id, why=str(exc))
        return SupplierSettlement(settlement_id, supplier_id, account.currency, 0, 0, 0,
                                  None, note=f"not settled: {exc}")
    balance = await ledger.balance(conn, payable)
    available = max(0, ledger.to_minor(balance.available))
    offset = await lending.apply_settlement_offset(
        conn, settlement_id, supplier_id, available, on, config, payable_account=payable)
    rest = available - offset.applied_minor
    payout_id, note = None, ""
    if rest > 0:
        controls = controls or gateways.PayoutControls()
        to, why_not = await gateways.settlement_account(
            conn, supplier_id, cooling_off=controls.cooling_off, now=now)
        if to is None or payable != gateways.supplier_payable(supplier_id):
            note = (f"not paid out ({why_not or 'not a supplier payable'}): the remainder "
                    "stays on the payable")
            rest = 0
        else:
            payout = await gateways.request_supplier_payout(conn, gateways.SupplierPayoutRequest(
                payout_id=payout_id_for(settlement_id, supplier_id), supplier_id=supplier_id,
                account_id=to.id, amount=ledger.from_minor(rest, account.currency),
                requested_by=actor, manual=False, purpose="settlement",
                description=f"Settlement {settlement_id}", banks=banks), controls, now=now)
            payout_id = payout.id
            if payout.status is gateways.PayoutState.PENDING_APPROVAL:
                note = "payout waits for a second person's approval"
    await lending.record_settlement(conn, lending.SettlementRecord(
        settlement_id, supplier_id, on, available, offset.applied_minor, rest, payout_id),
        offset.entry)
    repaid = tuple(r.loan.id for r in offset.repayments
                   if r.loan.status is lending.LoanStatus.REPAID)
    log.info("settlement.supplier", settlement_id=settlement_id, supplier_id=supplier_id,
             available_minor=available, offset_minor=offset.applied_minor, payout_minor=rest,
             payout_id=payout_id)
    return SupplierSettlement(settlement_id, supplier_id, account.currency, available,
                              offset.applied_minor, rest, payout_id, repaid, note=note)


async def suppliers_with_payables(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(supplier id, payable account code) for every supplier payable in the chart."""
    accounts = await ledger.list_accounts(conn, code_prefix=PAYABLE_PREFIX)
    return [(a.code.removeprefix(PAYABLE_PREFIX), a.code) for a in accounts
            if a.status is ledger.AccountStatus.OPEN]


async def run_settlement(
    engine: AsyncEngine,
    settlement_id: str,
    on: dt.date,
    config: LendingConfig,
    *,
    suppliers: Sequence[str] | None = None,
    banks: tuple[str, ...] = (),
    controls: gateways.PayoutControls | None = None,
    actor: str = "system:settlement",
    progress: Callable[[int, int], None] | None = None,
) -> SettlementRun:
    """Settle every supplier (or those named), each in its own transaction."""
    async with engine.connect() as conn:
        found = await suppliers_with_payables(conn)
    if suppliers is not None:
        wanted = set(suppliers)
        found = [(s, code) for s, code in found if s in wanted]
        missing = wanted - {s for s, _ in found}
        if missing:
            raise lending.InvalidInput(f"no supplier payable for {', '.join(sorted(missing))}")
    run = SettlementRun(settlement_id, on)
    for i, (supplier, code) in enumerate(found):
        try:
            result = await ledger.transact(engine, lambda c, s=supplier, a=code: settle_supplier(  # type: ignore[misc]
                c, settlement_id, s, on, config, payable_account=a, banks=banks,
                controls=controls, actor=actor))
        except (ledger.LedgerError, lending.LendingError, gateways.PaymentError) as exc:
            # One supplier's refusal (a race lost to a payout or a repayment from the same
            # payable, a loan closed meanwhile) rolled back their transaction alone; the
            # suppliers after them are still paid today. Before, it ended the run there,
            # and a refusal that held on every retry left every later supplier unpaid.
            log.error("settlement.supplier_failed", settlement_id=settlement_id,
                      supplier_id=supplier, error=type(exc).__name__, detail=str(exc))
            result = SupplierSettlement(settlement_id, supplier, "", 0, 0, 0, None,
                                        note=f"not settled: {type(exc).__name__}: {exc}",
                                        failed=True)
        run.suppliers.append(result)
        if progress:
            progress(i + 1, len(found))
    return run
