"""What each job kind does: each calls the function the CLI calls, and is safe to run
again after dying anywhere (the ledger's idempotency keys, the domains' compare-and-set
transitions, and the queue's own conditional updates make a retry finish the work once).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from paycore.jobs import queue
from paycore.jobs.queue import JobStatus
from paycore.jobs.worker import JobContext, JobLost, Result, handler
from paycore.schema import jobs

log = structlog.get_logger("paycore.jobs")

_TOTALS = ("loans", "entries", "interest_minor", "penalty_minor", "funding_minor",
           "marked_overdue")


def _business_date(ctx: JobContext) -> dt.date:
    text = ctx.job.payload.get("business_date")
    return dt.date.fromisoformat(text) if text else dt.datetime.now(dt.UTC).date()


async def _banks(ctx: JobContext) -> Any | None:
    """The deployment's banks (`PAYCORE_BANKS`), loaded once per worker, or None."""
    if "banks" not in ctx.services:
        import os

        if not os.environ.get("PAYCORE_BANKS"):
            ctx.services["banks"] = None
        else:
            from paycore.commands.payments import load_banks

            ctx.services["banks"] = await load_banks(ctx.engine)
    return ctx.services["banks"]


@handler("janitor")
async def janitor(ctx: JobContext) -> Result:
    """Expiry, then a status inquiry for every due pending/unknown payment, refund and
    payout (gateways.run_janitor)."""
    import gateways

    banks = await _banks(ctx)
    if banks is None:
        return {"skipped": "no banks configured (PAYCORE_BANKS)"}
    report = await gateways.run_janitor(ctx.engine, banks,
                                        limit=int(ctx.job.payload.get("limit", 200)))
    async with ctx.engine.begin() as conn:
        await gateways.save_bank_health(conn, banks)
    return {"summary": report.summary()}


@handler("payouts.submit")
async def submit_payouts(ctx: JobContext) -> Result:
    import gateways

    banks = await _banks(ctx)
    if banks is None:
        return {"skipped": "no banks configured (PAYCORE_BANKS)"}
    done = await gateways.submit_payouts(ctx.engine, banks,
                                         limit=int(ctx.job.payload.get("limit", 100)))
    return {"payouts": len(done)}


@handler("payouts.check_returns")
async def check_returns(ctx: JobContext) -> Result:
    """Ask the banks whether payouts that succeeded in the last `days` (default 7) came
    back (退票) and book the returns (gateways.check_payout_returns): a bank whose return
    notification never came is still found the next day."""
    import gateways

    banks = await _banks(ctx)
    if banks is None:
        return {"skipped": "no banks configured (PAYCORE_BANKS)"}
    report = await gateways.check_payout_returns(
        ctx.engine, banks, within=dt.timedelta(days=int(ctx.job.payload.get("days", 7))),
        limit=int(ctx.job.payload.get("limit", 500)))
    unwound = await unwind_returned_loans(ctx.engine, _lending_config())
    return {"asked": report.asked, "booked": len(report.booked),
            "to_review": len(report.to_review), "errors": len(report.errors),
            "loans_unwound": len(unwound)}


async def unwind_returned_loans(engine: Any, config: Any) -> list[str]:
    """Loans whose disbursement payout came back (by the inquiry above, or by the bank's
    notification at any time) go back to approved, their interest offset
    (paycore.disbursement.unwind_returned_disbursements); run after the returns are
    asked for and before each night's accrual."""
    from paycore.disbursement import unwind_returned_disbursements

    return await ledger.transact(engine, lambda conn: unwind_returned_disbursements(
        conn, config=config))


@handler("holds.expire")
async def expire_holds(ctx: JobContext) -> Result:
    expired = await ledger.transact(ctx.engine, ledger.expire_holds)
    return {"expired": len(expired)}


def _lending_config() -> Any:
    from paycore.commands.lending import CONFIG

    return CONFIG


@handler("accrual")
async def accrual(ctx: JobContext) -> Result:
    """The nightly accrual, split into chunks of loans (by id range) that any worker takes;
    this job waits for them and finishes with the last one, with the run's totals.
    Accrues through the business day before the occurrence's (the day that has ended),
    or `through` when given."""
    import lending

    payload = ctx.job.payload
    through = (dt.date.fromisoformat(payload["through"]) if payload.get("through")
               else _business_date(ctx) - dt.timedelta(days=1))
    # a loan whose proceeds came back earns nothing: unwound before the night's interest
    await unwind_returned_loans(ctx.engine, _lending_config())
    chunks = await lending.accrual_chunks(ctx.engine, through,
                                          int(payload.get("chunk_size", 5000)))
    totals: dict[str, Any] = {"through": through.isoformat(), "chunks": len(chunks),
                              **dict.fromkeys(_TOTALS, 0)}
    prefix = ctx.job.dedupe_key or f"job-{ctx.job.id}"
    async with ctx.engine.begin() as conn:
        for n, (after_id, last_id) in enumerate(chunks):
            await queue.enqueue(conn, "accrual.chunk", {
                "through": through.isoformat(), "after_id": after_id, "last_id": last_id,
                "batch_size": int(payload.get("batch_size", 1000))},
                dedupe_key=f"{prefix}:chunk:{n}", parent_id=ctx.job.id,
                max_attempts=ctx.job.max_attempts)
        await conn.execute(jobs.update().where(jobs.c.id == ctx.job.id)
                           .values(progress_total=len(chunks), progress_done=0))
        await ctx.complete_in(conn, totals,
                              status=JobStatus.WAITING if chunks else JobStatus.SUCCEEDED)
    return totals


async def _add_to_parent(conn: AsyncConnection, parent_id: int, part: Any) -> None:
    query = sa.select(jobs.c.result).where(jobs.c.id == parent_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    result = dict((await conn.execute(query)).scalar_one() or {})
    for name in _TOTALS:
        result[name] = int(result.get(name, 0)) + int(getattr(part, name))
    await conn.execute(jobs.update().where(jobs.c.id == parent_id).values(result=result))


@handler("accrual.chunk")
async def accrual_chunk(ctx: JobContext) -> Result:
    """One range of loans. Each batch adds its figures to the run in the batch's own
    transaction, and the chunk's completion counts it done in the run in the same
    transaction as the completion: killed anywhere, a retry leaves each loan-day posted
    once and the run's totals counted once."""
    import lending

    payload = ctx.job.payload
    parent_id = ctx.job.parent_id
    through = dt.date.fromisoformat(payload["through"])
    done = 0

    async def on_batch(conn: AsyncConnection, part: Any) -> None:
        nonlocal done
        if parent_id is not None:
            await _add_to_parent(conn, parent_id, part)
        done += part.loans
        await ctx.progress_in(conn, done)

    result = await lending.run_accrual(
        ctx.engine, through, _lending_config(), batch_size=int(payload.get("batch_size", 1000)),
        after_id=str(payload.get("after_id", "")), last_id=payload.get("last_id"),
        on_batch=on_batch)
    out = {name: getattr(result, name) for name in _TOTALS}
    async with ctx.engine.begin() as conn:
        await ctx.complete_in(conn, out)
        if parent_id is not None:
            await _count_chunk_done(conn, parent_id)
    return out


async def _count_chunk_done(conn: AsyncConnection, parent_id: int) -> None:
    row = (await conn.execute(
        jobs.update().where(jobs.c.id == parent_id, jobs.c.status == JobStatus.WAITING.value)
        .values(progress_done=jobs.c.progress_done + 1)
        .returning(jobs.c.progress_done, jobs.c.progress_total, jobs.c.result))).first()
    if row is None:
        raise JobLost(f"the run {parent_id} is not waiting for its chunks any more")
    if row.progress_total is not None and row.progress_done >= row.progress_total:
        await conn.execute(jobs.update().where(jobs.c.id == parent_id).values(
            status=JobStatus.SUCCEEDED.value, finished_at=queue.utcnow(), lease_owner=None))
        log.info("accrual.run_finished", run=parent_id, **{
            k: v for k, v in dict(row.result or {}).items() if isinstance(v, int | str)})


@handler("settlement")
async def settlement(ctx: JobContext) -> Result:
    """The supplier settlement run for the business day (`settle-<date>`: a rerun of the
    same day's run posts nothing new)."""
    from paycore import settlement as runs
    from paycore.payout_controls import controls_from_env

    day = _business_date(ctx)
    sid = str(ctx.job.payload.get("settlement_id") or f"settle-{day.isoformat()}")
    run = await runs.run_settlement(ctx.engine, sid, day, _lending_config(),
                                    controls=controls_from_env())
    if run.failed:
        # the job fails, so the queue runs it again (backoff, then a person): the same
        # settlement id posts nothing new for the suppliers already settled
        raise RuntimeError(f"settlement {sid}: {len(run.failed)} of {len(run.suppliers)} "
                           "supplier(s) not settled: " + "; ".join(
                               f"{s.supplier_id}: {s.note}" for s in run.failed))
    return {"settlement_id": sid, "suppliers": len(run.suppliers),
            "payouts": sum(1 for s in run.suppliers if s.payout_id)}


@handler("checkpoint")
async def checkpoint(ctx: JobContext) -> Result:
    """A signed checkpoint of the books (`paycore ledger checkpoint`), when a signing key
    is configured (PAYCORE_CHECKPOINT_KEY)."""
    from paycore import checkpoints

    settings = checkpoints.CheckpointSettings.from_env()
    if settings.key_file is None:
        return {"skipped": "no signing key configured (PAYCORE_CHECKPOINT_KEY)"}
    key = checkpoints.load_signing_key(settings.key_file)
    async with ctx.engine.connect() as conn:
        report = await ledger.verify(conn)
    if not report.ok:
        raise RuntimeError(f"the books do not prove out; no checkpoint signed: {report.summary()}")
    signed, path = await checkpoints.take(ctx.engine, key, settings.directory)
    return {"checkpoint": signed.head.hash, "file": str(path)}


@handler("statements.fetch")
async def fetch_statements(ctx: JobContext) -> Result:
    """Statement downloads from the banks that offer one (an adapter with
    `fetch_statement(day)`); none of today's adapters does, so this reports which banks
    were asked."""
    banks = await _banks(ctx)
    if banks is None:
        return {"skipped": "no banks configured (PAYCORE_BANKS)"}
    offering = [code for code in banks.codes
                if callable(getattr(banks.get(code), "fetch_statement", None))]
    return {"banks_offering": offering}


@handler("webhooks.dispatch")
async def dispatch_webhooks(ctx: JobContext) -> Result:
    from paycore import webhooks

    # a settings object the composition root gives the worker (the demo's loopback
    # receiver) wins over the environment's; a job's payload never can
    settings = ctx.services.get("webhook_settings") or webhooks.WebhookSettings.from_env()
    report = await webhooks.dispatch(ctx.engine, settings)
    return dataclasses.asdict(report)


@handler("jobs.purge")
async def purge_jobs(ctx: JobContext) -> Result:
    """Forget finished jobs older than `keep_days` (default 14): the scheduled ticks of a
    day are thousands of rows."""
    keep = dt.timedelta(days=int(ctx.job.payload.get("keep_days", 14)))
    cutoff = queue.utcnow() - keep
    async with ctx.engine.begin() as conn:
        done = await conn.execute(jobs.delete().where(
            jobs.c.status.in_([s.value for s in queue.FINISHED]), jobs.c.finished_at < cutoff,
            jobs.c.id != ctx.job.id))
    return {"purged": done.rowcount}
