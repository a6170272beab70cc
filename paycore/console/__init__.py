"""The operations console (issue #19): server-rendered pages under /console for the staff
who decide and explain — risk, finance, payments, the controller — and read-only viewers.

`install_console(app)` adds its routes to the API application (`paycore serve`); staff users
are managed with `paycore staff add|disable|reset|list`. Every decision is taken by calling
the domains' own functions with the actor `user:<username>`, so their four-eyes checks
compare people, and is recorded in the append-only `console_audit`.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from paycore.console.web import ConsoleSettings, LoginRequired, Refused, render

__all__ = ["install_console"]

#: the console's forms are not API calls: no Idempotency-Key (their CSRF token guards them,
#: and each decision is idempotent in its domain)
PREFIX = "/console"


async def _login_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = PREFIX
    return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    from paycore.console.web import session_of

    try:
        session = await session_of(request)
    except LoginRequired:
        session = None
    return render(request, "error.html", session, status=exc.status, message=exc.message)


def install_console(app: FastAPI) -> tuple[str, ...]:
    """Add the console to `app`; returns the path prefixes exempt from Idempotency-Key."""
    from paycore.console.routes import routers

    app.state.console_settings = ConsoleSettings.from_env()
    for router in routers():
        app.include_router(router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Refused, _refused)
    return (PREFIX,)
