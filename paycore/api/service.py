"""`/readyz` (the database answers, its migrations are at head, the job queue is readable)
and `/metrics` (Prometheus). `/healthz` (the process is up) is in `paycore.api.app`.
Neither takes an API key: expose them to the load balancer and the monitoring network only.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from paycore.api.deps import Engine

router = APIRouter(tags=["service"])


@router.get("/readyz", summary="Readiness: database, migrations, queue")
async def readyz(engine: Engine) -> JSONResponse:
    from alembic.script import ScriptDirectory

    from paycore import db, jobs

    checks: dict[str, str] = {}
    try:
        current = await db.current_revision(engine)
        head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
        async with engine.connect() as conn:
            await jobs.queue_depth(conn)
        checks["queue"] = "ok"
    except Exception as exc:  # any failure is "not ready"; the log has the details
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
        checks.setdefault("queue", "unreachable")
    ready = all(v == "ok" for v in checks.values()) and len(checks) == 3
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(engine: Engine) -> Response:
    from paycore import metrics as m

    return Response(await m.collect(engine), media_type=CONTENT_TYPE_LATEST)
