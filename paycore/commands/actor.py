"""Who acts on the command line. Every command that decides something about money names
the person acting (`--as NAME`) and proves it: NAME is a console staff user (`paycore
staff add`), whose password is prompted without echo (or read from PAYCORE_STAFF_PASSWORD,
for scripts) and checked like a console login (argon2id; unknown, disabled and locked users
refused; failures count towards the lock-out). With an `area` (risk, finance, payments),
only the roles the console lets act on that area's pages act here too (the same table,
paycore.console.staff.ACTORS); a viewer never acts. The actor recorded, and compared by
the four-eyes rules, is `user:<name>`; nobody acts as `system:` or as an API key from here.

A refusal is one red line on stderr saying what to do, exit 2, and nothing else happens:
the command's own transaction has not begun (only a failed password's count is kept).

Light on purpose: argon2 and the console's tables are imported when a command runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from paycore.runner import errors, in_transaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from paycore.console.staff import LoginRefused, StaffUser

_HELP = ("who you are: a console staff user{roles}, password prompted without echo (or "
         "PAYCORE_STAFF_PASSWORD); recorded in the audit trail{extra}")


def actor_option(area: str | None = None, *, extra: str = "") -> Any:
    """The `--as NAME` option of a command that acts (its help names the roles)."""
    roles = {"risk": " of the risk role", "finance": " of the finance or controller role",
             "payments": " of the payments role"}.get(area or "", "")
    return typer.Option(..., "--as", help=_HELP.format(roles=roles, extra=extra),
                        show_default=False)


def _refuse(message: str) -> NoReturn:
    from rich.markup import escape

    errors.print(f"[red]NotAuthenticated[/red]: {escape(message)}", highlight=False)
    raise typer.Exit(2)


def authenticated_user(name: str, *, area: str | None = None) -> StaffUser:
    """`--as NAME`, authenticated as the console staff user NAME. A person never acts as a
    system job or an API key (`system:`, `key:`); a viewer never acts; with `area`, only a
    staff user of a role that may act on the console's pages of that area acts."""
    from paycore.console import staff  # argon2 and the console's tables: only when used

    kind, sep, rest = name.strip().partition(":")
    if sep and kind.strip().lower() != "user":
        _refuse(f"{name!r} is not a person: --as names a console staff user (paycore staff "
                "list); system jobs and API keys do not act from the command line")
    username = (rest if sep else kind).strip().casefold()
    password = os.environ.get("PAYCORE_STAFF_PASSWORD")
    if not password:
        try:
            password = str(typer.prompt(f"password of staff user {username}",
                                        hide_input=True))
        except typer.Abort:  # no terminal to ask on, or ^C/^D
            _refuse(f"no password given for staff user {username}: type it when asked, or "
                    "set PAYCORE_STAFF_PASSWORD when no terminal is attached")

    async def login(conn: AsyncConnection) -> StaffUser | LoginRefused:
        try:
            return await staff.authenticate(conn, username, password)
        except staff.LoginRefused as exc:
            return exc  # returned, not raised: the failure's count is committed
    user = in_transaction(login)
    if isinstance(user, staff.LoginRefused):
        # which of the four it was is not said (no oracle for names), what to do is
        _refuse(f"{user} (--as {username}). Check the name (paycore staff list) and the "
                "password; a disabled or locked user is let in again by an administrator "
                f"(paycore staff reset {username}), a lock-out also ends by itself after "
                f"{int(staff.LOCKOUT.total_seconds()) // 60} minutes")
    if user.role is staff.Role.VIEWER:
        _refuse(f"staff user {username} is a viewer: viewers read and change nothing; ask a "
                "colleague whose role acts here")
    if area is not None and user.role not in staff.ACTORS[area]:
        allowed = " or ".join(sorted(r.value for r in staff.ACTORS[area]))
        _refuse(f"staff user {username} is {user.role.value}: this is for {allowed} staff "
                f"(as on the console's {area} pages); ask one of them to run it --as "
                "themselves")
    return user


def authenticated_actor(name: str, *, area: str | None = None) -> str:
    """The actor string (`user:<name>`) of `authenticated_user`."""
    return authenticated_user(name, area=area).actor


async def record_decision(conn: AsyncConnection, user: StaffUser, *, action: str,
                          subject: str, reason: str,
                          details: Mapping[str, Any] | None = None) -> None:
    """The decision's row in the console's audit trail (append-only, shown on
    /console/audit), in the decision's own transaction, marked as taken on the command
    line."""
    from paycore.console import audit

    await audit.record(conn, actor=user.actor, role=user.role.value, action=action,
                       subject=subject, reason=reason,
                       details={"via": "cli", **(details or {})})
