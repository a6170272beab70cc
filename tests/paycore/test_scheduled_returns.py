"""The daily return check is a default schedule (#17): a payout the bank returned without
a notification is found and booked back by the worker's `payouts.check_returns` job, with
no person running `paycore payments check-returns`; run again, nothing more is booked.
The REST sandbox bank, both databases."""

from __future__ import annotations

import datetime as dt

import gateways
from gateways import PayoutState
from gateways.sandbox import Fault
from paycore.jobs import JobStatus, ScheduleConfig, Worker, list_jobs, load_schedules
from tests.gateways.core_env import checkout_env
from tests.gateways.test_payout_returns import _paid, _payout


async def test_the_default_schedules_find_a_returned_payout_nobody_was_told_of(db):
    config = load_schedules({})
    [daily] = [s for s in config.schedules if s.kind == "payouts.check_returns"]
    assert daily.at == dt.time(9, 0) and config.timezone.key == "Asia/Shanghai"
    async with checkout_env(db, ("restbank",)) as env:
        pid = "poScheduledReturn01"
        await _paid(env, "restbank", pid)
        env.fleet.bank("restbank").faults.set(pid, Fault.NO_NOTIFY)  # only an inquiry tells
        env.fleet.bank("restbank").return_payout(pid, "account closed")
        await env.fleet.drain()
        assert (await _payout(db, pid)).status is PayoutState.SUCCEEDED

        worker = Worker(db, schedules=ScheduleConfig(config.timezone, (daily,)),
                        services={"banks": env.banks})
        assert await worker.drain() == 1
        assert (await _payout(db, pid)).status is PayoutState.RETURNED
        async with db.connect() as conn:
            [job] = await list_jobs(conn, kind="payouts.check_returns")
        assert job.status is JobStatus.SUCCEEDED
        assert job.result == {"asked": 1, "booked": 1, "to_review": 0, "errors": 0,
                              "loans_unwound": 0}
        # tomorrow's run asks about it no more, and books nothing
        again = await gateways.check_payout_returns(db, env.banks)
        assert again.asked == 0 and again.booked == []
        assert len(await env.entries("payout.return")) == 1
        await env.assert_agrees_with_banks()
