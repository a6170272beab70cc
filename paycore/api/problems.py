"""Every error the API answers is `application/problem+json` (RFC 9457).

Three sources of errors, one shape:
- `ApiProblem`: what the API layer itself refuses (authentication, scopes, idempotency,
  not found). Raise it from a route or dependency.
- Domain errors (`ledger.LedgerError`, `lending.LendingError`, ...): registered here once
  with `register_error(ErrorClass, status)`; the most specific registered class in the
  exception's MRO decides the status, and the exception's own message becomes `detail`,
  its class attribute `code` the problem `type`, its public attributes extension members.
- Framework errors (request validation, unknown route, wrong method) and anything
  unexpected (500, with no internals in the body).

A problem's `type` is `ApiSettings.problem_base_uri` + the error's code, `instance` is the
request path, and every problem carries the `request_id` the response echoes in
`X-Request-ID`.
"""

from __future__ import annotations

import datetime as dt
import http
import json
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from moneyed import Money
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

import ledger
import lending
import reconciliation

PROBLEM_JSON = "application/problem+json"
_MEMBERS = {"type", "title", "status", "detail", "instance", "code", "request_id"}
_SECRETS = re.compile(r"(secret|password|token|key_material|private|authorization|account_number)",
                      re.I)
#: the scope key an error handler sets when the request failed before it could change
#: anything (authentication, validation, routing): the idempotency layer then forgets the
#: key instead of storing this response for replay
NO_REPLAY = "paycore.no_replay"
REQUEST_ID = "paycore.request_id"


class ApiProblem(Exception):
    """An error the API layer itself answers with. `replayable` False marks a refusal that
    happened before the request could change anything (its Idempotency-Key stays free)."""

    status = 400
    code = "bad-request"
    replayable = True

    def __init__(self, detail: str, *, status: int | None = None, code: str | None = None,
                 title: str | None = None, headers: Mapping[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.title = title or _title(self.code)
        self.headers = dict(headers or {})
        self.extensions = extensions


class Unauthorized(ApiProblem):
    status, code, replayable = 401, "unauthorized", False

    def __init__(self, detail: str, *, error: str | None = None) -> None:
        challenge = 'Bearer realm="paycore"' + (f', error="{error}"' if error else "")
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(ApiProblem):
    status, code, replayable = 403, "insufficient-scope", False

    def __init__(self, required: str, granted: list[str]) -> None:
        super().__init__(
            f"this API key lacks the scope {required!r} (it has: {', '.join(granted) or 'none'})",
            headers={"WWW-Authenticate":
                     f'Bearer realm="paycore", error="insufficient_scope", scope="{required}"'},
            required_scope=required, granted_scopes=granted,
        )


class NotFound(ApiProblem):
    """A resource that does not exist, or belongs to another merchant: the two are
    indistinguishable on purpose, so ids cannot be probed across merchants."""

    status, code = 404, "not-found"


# -- the registry of domain errors --------------------------------------------------------

_STATUS_BY_ERROR: dict[type[Exception], int] = {}


def register_error(error: type[Exception], status: int) -> None:
    """Map a domain error class (and its subclasses, unless they are registered too) to an
    HTTP status. Call at import time of the router module that can raise it."""
    if not 400 <= status <= 599:
        raise ValueError(f"{status} is not an error status")
    _STATUS_BY_ERROR[error] = status


def registered_errors() -> tuple[type[Exception], ...]:
    return tuple(_STATUS_BY_ERROR)


def status_for(exc: BaseException) -> int | None:
    for cls in type(exc).__mro__:
        if cls in _STATUS_BY_ERROR:
            return _STATUS_BY_ERROR[cls]
    return None


# The ledger: the request can never be valid -> 422; it clashes with the books' state -> 409;
# what it names does not exist -> 404.
for _error, _status in (
    (ledger.LedgerError, 400),
    (ledger.InvalidRequest, 422),
    (ledger.CurrencyMismatch, 422),
    (ledger.HoldAmountExceeded, 422),
    (ledger.UnknownAccount, 404),
    (ledger.EntryNotFound, 404),
    (ledger.HoldNotFound, 404),
    (ledger.AccountExists, 409),
    (ledger.AccountClosed, 409),
    (ledger.AccountNotEmpty, 409),
    (ledger.AlreadyReversed, 409),
    (ledger.HoldAlreadyResolved, 409),
    (ledger.HoldExpired, 409),
    (ledger.IdempotencyConflict, 409),
    (ledger.BalanceLimitExceeded, 422),
    (ledger.BalanceOutOfRange, 422),
    (lending.LendingError, 422),
    (reconciliation.StatementError, 422),
):
    register_error(_error, _status)


# -- building problem responses -----------------------------------------------------------


def _title(code: str) -> str:
    return code.replace("-", " ").capitalize()


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def code_of(exc: BaseException) -> str:
    code = getattr(type(exc), "code", None)
    return code if isinstance(code, str) else _kebab(type(exc).__name__)


def plain(value: Any) -> Any:
    """A JSON-ready copy: exact decimals and money as strings (never floats)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency.code}
    if isinstance(value, Decimal | uuid.UUID | dt.date | dt.datetime):
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def extensions_of(exc: BaseException) -> dict[str, Any]:
    """A domain error's public attributes, as problem extension members."""
    members: dict[str, Any] = {}
    for name, value in vars(exc).items():
        if name.startswith("_") or _SECRETS.search(name):
            continue
        members[f"error_{name}" if name in _MEMBERS else name] = plain(value)
    return members


def problem_body(scope: Scope, *, status: int, code: str | None, detail: str,
                 title: str | None = None, extensions: Mapping[str, Any] | None = None,
                 ) -> dict[str, Any]:
    settings = scope["app"].state.settings if "app" in scope else None
    if code is None:
        body: dict[str, Any] = {"type": "about:blank", "title": http.HTTPStatus(status).phrase}
    else:
        base = settings.problem_base_uri if settings is not None else ""
        body = {"type": base + code, "title": title or _title(code)}
    body.update(status=status, detail=detail, instance=scope.get("path", ""))
    if code is not None:
        body["code"] = code
    request_id = scope.get("state", {}).get(REQUEST_ID)
    if request_id:
        body["request_id"] = request_id
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return body


def problem_response(scope: Scope, *, status: int, code: str | None, detail: str,
                     title: str | None = None, extensions: Mapping[str, Any] | None = None,
                     headers: Mapping[str, str] | None = None) -> Response:
    body = problem_body(scope, status=status, code=code, detail=detail, title=title,
                        extensions=extensions)
    return Response(json.dumps(body, ensure_ascii=False).encode(), status_code=status,
                    media_type=PROBLEM_JSON, headers=dict(headers or {}))


def internal_error_response(scope: Scope) -> Response:
    return problem_response(
        scope, status=500, code=None,
        detail="The server could not complete the request; nothing about it is shown here. "
               "Quote the request_id when reporting it.",
    )


def _no_replay(request: Request) -> None:
    request.scope[NO_REPLAY] = True


async def _api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    if not exc.replayable:
        _no_replay(request)
    return problem_response(request.scope, status=exc.status, code=exc.code, detail=exc.detail,
                            title=exc.title, extensions=plain(exc.extensions),
                            headers=exc.headers)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    _no_replay(request)
    # never echo the input back: it may hold a secret or an account number
    errors = [{"location": [str(part) for part in e.get("loc", ())], "message": e.get("msg", ""),
               "type": e.get("type", "")} for e in exc.errors()]
    where = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
    return problem_response(request.scope, status=422, code="validation-failed",
                            title="Validation failed",
                            detail=f"the request is not valid: {where}",
                            extensions={"errors": errors})


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    _no_replay(request)
    detail = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(request.scope, status=exc.status_code, code=None, detail=detail,
                            headers=exc.headers)


async def _domain(request: Request, exc: Exception) -> Response:
    status = status_for(exc) or 400
    return problem_response(request.scope, status=status, code=code_of(exc), detail=str(exc),
                            extensions=extensions_of(exc))


def install_handlers(app: FastAPI) -> None:
    """Route every known error to its problem; call after the routers are imported, so the
    errors they registered are included."""
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for error in registered_errors():
        app.add_exception_handler(error, _domain)
