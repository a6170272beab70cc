"""paycore's job queue, schedules and workers (see `paycore.jobs.queue`,
`paycore.jobs.schedules`, `paycore.jobs.worker`; the job kinds in `paycore.jobs.handlers`).

    async with engine.begin() as conn:
        await jobs.enqueue(conn, "accrual", {"through": "2026-12-06"}, dedupe_key="accrual:2026-12-06")
    worker = jobs.Worker(engine, schedules=jobs.load_schedules())
    await worker.serve(stop)      # paycore worker
    await worker.drain()          # in-process: every due job, then return
"""

from paycore.jobs import handlers  # noqa: F401  (registers the job kinds)
from paycore.jobs.queue import (
    Job,
    JobStatus,
    cancel,
    claim,
    complete,
    enqueue,
    fail,
    find_job,
    heartbeat,
    list_jobs,
    queue_depth,
    reap,
    retry,
)
from paycore.jobs.schedules import Schedule, ScheduleConfig, due_occurrence, load_schedules
from paycore.jobs.worker import HANDLERS, JobContext, JobLost, Worker, handler, worker_name

__all__ = [
    "HANDLERS", "Job", "JobContext", "JobLost", "JobStatus", "Schedule", "ScheduleConfig",
    "Worker", "cancel", "claim", "complete", "due_occurrence", "enqueue", "fail", "find_job",
    "handler", "heartbeat", "list_jobs", "load_schedules", "queue_depth", "reap", "retry",
    "worker_name",
]
