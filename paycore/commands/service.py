"""Running as a service: the worker, the job queue, webhook endpoints and events.

    paycore worker [--concurrency N] [--no-schedules] [--once]   run jobs (and schedules)
    paycore jobs list [--status S] [--kind K]                    the queue, with progress
    paycore jobs enqueue KIND [--payload JSON]                   queue a job by hand
    paycore jobs retry ID | paycore jobs cancel ID
    paycore webhooks add MERCHANT URL [--topic T]                prints the secret once
    paycore webhooks list [--merchant M] | disable ID | enable ID | rotate ID
    paycore webhooks deliveries [--status failed] | redeliver EVENT_ID [--endpoint ID]
    paycore webhooks rekey                                       seal secrets under the newest key
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paycore.runner import command_group, console, errors, in_transaction, read_only, run

if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

jobs_app = command_group("The job queue: list, retry, cancel.")
webhooks_app = command_group("Merchants' webhook endpoints and deliveries.")


def worker(concurrency: int = typer.Option(
               int(os.environ.get("PAYCORE_WORKER_CONCURRENCY", "4")), min=1,
               help="jobs run at once by this process"),
           schedules: bool = typer.Option(True, help="queue the schedules' occurrences "
                                          "(PAYCORE_SCHEDULES, PAYCORE_TIMEZONE)"),
           once: bool = typer.Option(False, "--once", help="run every due job, then exit "
                                     "(the in-process runner, e.g. on SQLite from cron)"),
           kind: Annotated[list[str] | None, typer.Option(
               help="only jobs of this kind (repeat)")] = None) -> None:
    """Take jobs from the queue and run them until SIGTERM/SIGINT (then finish the jobs in
    hand). Any number of workers, on any number of machines, share one database's queue."""
    from paycore.jobs import Worker, load_schedules

    lease = dt.timedelta(seconds=int(os.environ.get("PAYCORE_JOB_LEASE_SECONDS", "30")))
    poll = dt.timedelta(milliseconds=int(os.environ.get("PAYCORE_WORKER_POLL_MS", "500")))

    async def go(engine: AsyncEngine) -> int:
        w = Worker(engine, concurrency=concurrency, lease=lease, poll=poll,
                   schedules=load_schedules() if schedules else None,
                   kinds=tuple(kind) if kind else None)
        try:
            if once:
                return await w.drain()
            import asyncio  # not for `paycore --help` (#18 §5)

            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await w.serve(stop)
            return 0
        finally:
            banks = w.services.get("banks")
            if banks is not None:
                import gateways

                async with engine.begin() as conn:
                    await gateways.save_bank_health(conn, banks)
                for code in banks.codes:
                    close = getattr(banks.get(code), "aclose", None)
                    if close is not None:
                        await close()

    ran = run(go)
    if once:
        console.print(f"{ran} jobs run")


def _job_table(found: list[Any]) -> Table:
    from rich.table import Table  # rich loads with the commands that print tables

    table = Table("id", "kind", "status", "attempts", "progress", "run after", "key", "note")
    for j in found:
        progress = (f"{j.progress_done}/{j.progress_total}" if j.progress_total
                    else (str(j.progress_done) if j.progress_done else ""))
        note = j.last_error or (json.dumps(j.result, default=str)[:80] if j.result else "")
        table.add_row(str(j.id), j.kind, j.status.value, f"{j.attempts}/{j.max_attempts}",
                      progress, j.run_after.isoformat(timespec="seconds"), j.dedupe_key or "",
                      note, style="red" if j.status.value == "failed" else None)
    return table


@jobs_app.command("list")
def jobs_list(status: str | None = typer.Option(None), kind: str | None = typer.Option(None),
              parent: int | None = typer.Option(None, help="a run's chunks"),
              limit: int = typer.Option(50)) -> None:
    """Jobs, newest first, with their progress (a run: chunks done of chunks)."""
    from paycore import jobs

    found = read_only(lambda conn: jobs.list_jobs(conn, status=status, kind=kind,
                                                  parent_id=parent, limit=limit))
    console.print(_job_table(found))


@jobs_app.command("enqueue")
def jobs_enqueue(kind: str, payload: str = typer.Option("{}", help="JSON object"),
                 key: str | None = typer.Option(None, help="dedupe key: at most one such job")
                 ) -> None:
    """Queue a job by hand (e.g. `accrual --payload '{"through": "2026-12-06"}'`)."""
    from paycore import jobs

    if kind not in jobs.HANDLERS:
        errors.print(f"[red]no job kind {kind!r}[/red]; kinds: {', '.join(sorted(jobs.HANDLERS))}")
        raise typer.Exit(2)
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise typer.BadParameter("--payload must be a JSON object")
    job_id = in_transaction(lambda conn: jobs.enqueue(conn, kind, body, dedupe_key=key))
    console.print(f"queued job {job_id}" if job_id else f"a job with key {key!r} exists already")


@jobs_app.command("retry")
def jobs_retry(job_id: int) -> None:
    """Queue a failed or canceled job again, now, with fresh attempts."""
    from paycore import jobs

    job = in_transaction(lambda conn: jobs.retry(conn, job_id))
    if job is None:
        errors.print(f"[red]job {job_id} is not failed or canceled (or does not exist)[/red]")
        raise typer.Exit(2)
    console.print(f"job {job_id} ({job.kind}) queued again")


@jobs_app.command("cancel")
def jobs_cancel(job_id: int) -> None:
    """Cancel a queued, waiting or running job (a running one stops at its next
    heartbeat) and its chunks."""
    from paycore import jobs

    job = in_transaction(lambda conn: jobs.cancel(conn, job_id))
    if job is None:
        errors.print(f"[red]job {job_id} is finished already (or does not exist)[/red]")
        raise typer.Exit(2)
    console.print(f"job {job_id} ({job.kind}) canceled")


@webhooks_app.command("add")
def webhooks_add(merchant: str, url: str,
                 topic: Annotated[list[str] | None, typer.Option(
                     help="a topic to send (repeat; default all, e.g. payment.*)")] = None,
                 description: str = typer.Option("")) -> None:
    """Register a merchant's endpoint; its signing secret is printed once."""
    from paycore import webhooks

    async def go(conn: AsyncConnection) -> tuple[webhooks.Endpoint, str]:
        return await webhooks.create_endpoint(conn, merchant, url, topics=topic or ["*"],
                                              description=description)
    try:
        endpoint, secret = in_transaction(go)
    except webhooks.InvalidEndpoint as exc:
        errors.print(f"[red]InvalidEndpoint[/red]: {exc}")
        raise typer.Exit(2) from None
    console.print(f"endpoint {endpoint.id} for {merchant}: {url} "
                  f"({' '.join(endpoint.topics)}); signing secret, shown only now:")
    console.print(secret, markup=False, highlight=False)


@webhooks_app.command("list")
def webhooks_list(merchant: str | None = typer.Option(None)) -> None:
    from rich.table import Table  # rich loads with the commands that print tables

    from paycore import webhooks

    table = Table("id", "merchant", "url", "topics", "status", "rotating until")
    for e in read_only(lambda conn: webhooks.list_endpoints(conn, merchant)):
        table.add_row(e.id, e.merchant_id, e.url, " ".join(e.topics), e.status,
                      e.rotating_until.isoformat(timespec="seconds") if e.rotating_until else "")
    console.print(table)


def _endpoint_change(name: str, endpoint_id: str) -> None:
    from paycore import webhooks

    change = {"disable": webhooks.disable_endpoint, "enable": webhooks.enable_endpoint}[name]
    found = in_transaction(lambda conn: change(conn, endpoint_id))
    if found is None:
        errors.print(f"[red]no endpoint {endpoint_id}[/red]")
        raise typer.Exit(2)
    console.print(f"endpoint {endpoint_id}: {found.status}")


@webhooks_app.command("disable")
def webhooks_disable(endpoint_id: str) -> None:
    """Stop sending to an endpoint (its pending deliveries wait)."""
    _endpoint_change("disable", endpoint_id)


@webhooks_app.command("enable")
def webhooks_enable(endpoint_id: str) -> None:
    _endpoint_change("enable", endpoint_id)


@webhooks_app.command("rotate")
def webhooks_rotate(endpoint_id: str, overlap_hours: int = typer.Option(24, min=0)) -> None:
    """A new signing secret (printed once); the old one also signs for --overlap-hours."""
    from paycore import webhooks

    done = in_transaction(lambda conn: webhooks.rotate_secret(
        conn, endpoint_id, overlap=dt.timedelta(hours=overlap_hours)))
    if done is None:
        errors.print(f"[red]no endpoint {endpoint_id}[/red]")
        raise typer.Exit(2)
    console.print(f"endpoint {endpoint_id}: new signing secret, shown only now:")
    console.print(done[1], markup=False, highlight=False)


@webhooks_app.command("rekey")
def webhooks_rekey() -> None:
    """Seal every endpoint's signing secrets under the newest key of PAYCORE_ACCOUNT_KEYS
    (after putting a new key first; then the old key may be dropped)."""
    from paycore import webhooks

    count = in_transaction(webhooks.rekey_secrets)
    console.print(f"{count} webhook endpoints sealed under the newest account key")


@webhooks_app.command("deliveries")
def webhooks_deliveries(status: str | None = typer.Option(None, help="pending, delivered, failed"),
                        endpoint: str | None = typer.Option(None),
                        limit: int = typer.Option(50)) -> None:
    from rich.table import Table  # rich loads with the commands that print tables

    from paycore import webhooks

    table = Table("id", "endpoint", "event", "status", "attempts", "next attempt", "last")
    for d in read_only(lambda conn: webhooks.list_deliveries(conn, status=status,
                                                             endpoint_id=endpoint, limit=limit)):
        table.add_row(str(d.id), d.endpoint_id, d.event_id, d.status, str(d.attempts),
                      d.next_attempt_at.isoformat(timespec="seconds"),
                      d.last_error or (str(d.last_status_code or "")))
    console.print(table)


@webhooks_app.command("redeliver")
def webhooks_redeliver(event_id: str, endpoint: str | None = typer.Option(None)) -> None:
    """Send an event again (the next dispatch sends it)."""
    from paycore import webhooks

    n = in_transaction(lambda conn: webhooks.redeliver(conn, event_id, endpoint_id=endpoint))
    if not n:
        errors.print(f"[red]event {event_id} has no endpoint to go to (or is not yet "
                     "numbered: the dispatcher numbers new events)[/red]")
        raise typer.Exit(2)
    console.print(f"event {event_id}: {n} deliveries queued again")


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(webhooks_app, name="webhooks")
