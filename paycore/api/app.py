"""The application factory: `create_app(engine)` assembles the routers, the error
handlers, the idempotency and request-context layers, and the OpenAPI document."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.api.context import RequestContextMiddleware
from paycore.api.guard import RequestGuardMiddleware
from paycore.api.idempotency import IdempotencyMiddleware
from paycore.api.models import problem_schema
from paycore.api.problems import PROBLEM_JSON, install_handlers
from paycore.api.settings import ApiSettings

#: The routers, in this order. Each module defines `router: fastapi.APIRouter` (with its
#: full paths, e.g. `APIRouter(prefix="/v1/loans")`) and may define
#: `IDEMPOTENCY_EXEMPT: tuple[str, ...]`, path prefixes whose POSTs are not API calls
#: (bank callbacks). A module listed here that does not exist yet is skipped.
ROUTER_MODULES: tuple[str, ...] = (
    "paycore.api.ledger",
    "paycore.api.payments",
    "paycore.api.payout_controls",
    "paycore.api.lending",
    "paycore.api.lending_products",
    "paycore.api.lending_overpayments",
    "paycore.api.reconciliation",
    "paycore.api.events",
    "paycore.api.service",
)

DESCRIPTION = """\
paycore's HTTP API: checkout payments, refunds and payouts through banks' own gateways,
supply-chain loans, reconciliation, and the ledger's books.

* **Authentication**: `Authorization: Bearer <API key>`; each operation names the scope
  it needs. A merchant sees only its own resources (another merchant's are 404).
* **Idempotency**: every POST needs an `Idempotency-Key` header. The same key with the same
  request returns the first response again (`Idempotent-Replayed: true`); the same key with
  a different request is a 409.
* **Errors**: always `application/problem+json` (RFC 9457), with a `code` and the
  `request_id` echoed in `X-Request-ID`.
* **Money**: `{"amount": "100.00", "currency": "CNY"}` — amounts are decimal strings.
"""


def _load(module_name: str) -> Any | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def load_routers() -> list[tuple[APIRouter, tuple[str, ...]]]:
    found = []
    for name in ROUTER_MODULES:
        module = _load(name)
        if module is not None:
            found.append((module.router, tuple(getattr(module, "IDEMPOTENCY_EXEMPT", ()))))
    return found


def _health_router() -> APIRouter:
    router = APIRouter(tags=["service"])

    @router.get("/healthz", summary="Liveness", include_in_schema=True)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return router


def create_app(engine: AsyncEngine, *, settings: ApiSettings | None = None,
               state: Mapping[str, object] | None = None) -> FastAPI:
    """The API on `engine` (owned by the caller, who disposes of it). `state` puts extra
    objects on `app.state` for routers (e.g. `banks` for the payment routes)."""
    settings = settings or ApiSettings.from_env()
    app = FastAPI(title="paycore", version="0.1.0", description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.engine = engine
    app.state.settings = settings
    for name, value in (state or {}).items():
        setattr(app.state, name, value)
    exempt: list[str] = []
    app.include_router(_health_router())
    routers = load_routers()
    for router, exempt_prefixes in routers:
        app.include_router(router)
        exempt.extend(exempt_prefixes)
    from paycore.console import install_console  # the staff console (#19): HTML under /console

    exempt.extend(install_console(app))
    install_handlers(app)  # after the imports above: routers register their domain errors
    app.add_middleware(IdempotencyMiddleware, exempt_prefixes=tuple(exempt))
    # NUL bytes, body caps, and the key and scopes checked before a body is read or replayed
    app.add_middleware(RequestGuardMiddleware)
    app.add_middleware(RequestContextMiddleware)  # added last = outermost
    app.openapi = _openapi_builder(app, tuple(exempt))  # type: ignore[method-assign]
    return app


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


_IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key", "in": "header", "required": True,
    "description": "A unique value per operation (e.g. a UUID), 1-255 visible ASCII "
                   "characters; send the same value to retry.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _openapi_builder(app: FastAPI, exempt: tuple[str, ...]) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = problem_schema()
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                if "422" in responses or method == "post":
                    responses["422"] = _problem("The request is not valid")
                if operation.get("security"):
                    responses["401"] = _problem("No valid API key")
                    responses["403"] = _problem("The API key lacks the scope")
                responses["default"] = _problem("An error (RFC 9457 problem details)")
                if method == "post" and not path.startswith(exempt):
                    operation.setdefault("parameters", []).append(_IDEMPOTENCY_PARAMETER)
                    responses["409"] = _problem(
                        "Idempotency-Key reused with a different request, or still in progress")
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    return openapi
