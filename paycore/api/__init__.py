"""paycore's HTTP API (FastAPI): `create_app(engine) -> FastAPI`.

    from paycore.api import create_app
    app = create_app(engine)                      # settings from the environment
    app = create_app(engine, state={"banks": banks})  # extra objects for routers

`paycore serve` runs it with uvicorn; `paycore apikeys create MERCHANT --scope ...` issues
a key (printed once). /openapi.json and /docs describe every route.

Adding a router (lending, reconciliation, ...)
----------------------------------------------
1. Write `paycore/api/<domain>.py` defining `router = APIRouter(prefix="/v1/...",
   tags=["<domain>"])`. It is already listed in `paycore.api.app.ROUTER_MODULES`
   (`paycore.api.lending`, `paycore.api.reconciliation`); a listed module that does not
   exist is skipped, so nothing else needs editing.
2. Authenticate and authorise with a scope; filter everything merchant-owned by
   `principal.merchant_id` (another merchant's resource is a 404, never a 403):

       from paycore.api import Principal, requires, Engine, ReadConnection

       @router.get("/v1/loans/{loan_id}")
       async def get_loan(loan_id: str,
                          principal: Annotated[Principal, requires("lending:read")],
                          conn: ReadConnection) -> LoanOut: ...

   Scopes in `paycore.api.keys.SCOPES` (lending:read, lending:write, lending:review,
   reconciliation:read, reconciliation:write, ...); a new one: `keys.declare_scope(name,
   description)` at import time. `admin` and `<domain>:*` keys hold them too.
3. Database: `Engine` is the AsyncEngine; write with `await ledger.transact(engine, work)`
   (retries deadlocks) or `async with engine.begin() as conn:` so the domain's state change
   and its journal entry commit together. `ReadConnection` is a short read-only connection
   (closed when the route returns); do not hold it while opening a write transaction
   (SQLite's write lock would wait on itself).
4. POST: the `Idempotency-Key` header is enforced for you (replay / 409) by a middleware;
   pass `DomainIdempotencyKey` (`api:<merchant>:<key>`) to your domain function as its own
   idempotency key, so even a retry after a lost response acts once. Bank callbacks and
   the like: list their path prefixes in the module's `IDEMPOTENCY_EXEMPT` tuple.
5. Errors: raise your domain's errors; register the base class (and subclasses whose
   status differs) once, at import of your router module:

       from paycore.api import register_error
       register_error(lending.LendingError, 422)
       register_error(lending.IllegalTransition, 409)

   The message becomes `detail`, the class attribute `code` the problem type, public
   attributes extension members. For API-level refusals raise `ApiProblem(detail,
   status=..., code=...)` or `NotFound(...)`. Everything is application/problem+json.
6. Money in and out: `paycore.api.models.MoneyIn` / `MoneyOut` (decimal strings).
7. Tests: `tests/api/conftest.py` has the fixtures `app` (create_app on the `db` engine,
   SQLite and PostgreSQL), `api` (an httpx.AsyncClient speaking ASGI to it) and
   `issue_key(merchant, *scopes) -> bearer token`, and the helpers `bearer(key)` and
   `is_problem(response, status, code)`; `tests/api/test_server.serving(app)` runs an app
   under uvicorn on 127.0.0.1. `tests/api/test_fuzz.py` fuzzes every route from the
   OpenAPI document (yours included, automatically): no 5xx, errors problem+json.
8. Before any route runs, `paycore.api.guard` refuses a NUL byte in the path, query or
   body (422 `nul-byte`), a body over the cap (413; a route may lower it with
   `max_body_size=`), and checks the key and the route's scopes before the body is read.
   Dates, times and ids: `models.ApiDate` / `ApiDateTime` / `ApiDateOrDateTime` (ISO,
   1970..2199) and `models.BIGINT_MAX`; currencies `models.Currency`.

Settings (`ApiSettings.from_env`): PAYCORE_API_HOST / _PORT / _PUBLIC_URL,
PAYCORE_API_PROBLEM_BASE_URI, PAYCORE_API_IDEMPOTENCY_LOCK_SECONDS (a claim older than
this is taken to be a crashed server's), PAYCORE_API_MAX_BODY_BYTES (every body),
PAYCORE_API_NOTIFICATION_RATE_LIMIT / _RATE_WINDOW_SECONDS (bank notifications per client
address, counted across worker processes); logging from
PAYCORE_LOG_FORMAT / PAYCORE_LOG_LEVEL. `paycore idempotency purge --older-than-days N`
forgets old stored responses.
"""

from paycore.api.app import ROUTER_MODULES, create_app
from paycore.api.auth import Principal, requires
from paycore.api.deps import DomainIdempotencyKey, Engine, ReadConnection, Settings
from paycore.api.keys import (
    ApiKey,
    IssuedKey,
    create_api_key,
    declare_scope,
    list_api_keys,
    revoke_api_key,
)
from paycore.api.problems import ApiProblem, NotFound, register_error
from paycore.api.settings import ApiSettings

__all__ = [
    "ROUTER_MODULES", "ApiKey", "ApiProblem", "ApiSettings", "DomainIdempotencyKey", "Engine",
    "IssuedKey", "NotFound", "Principal", "ReadConnection", "Settings", "create_api_key",
    "create_app", "declare_scope", "list_api_keys", "register_error", "requires",
    "revoke_api_key",
]
