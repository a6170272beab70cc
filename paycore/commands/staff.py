"""`paycore staff add|disable|reset|list`: the console's staff users (not merchants' API
keys). Passwords are read from a prompt (or PAYCORE_STAFF_PASSWORD, for scripts), stored as
argon2id hashes, never printed."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from paycore.runner import command_group, console, errors, in_transaction, read_only

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

staff_app = command_group("Staff users of the operations console (roles: risk, finance, "
                        "payments, controller, viewer).")


def _password(confirm: bool = True) -> str:
    given = os.environ.get("PAYCORE_STAFF_PASSWORD")
    if given:
        return given
    return str(typer.prompt("password (12 characters or more)", hide_input=True,
                            confirmation_prompt=confirm))


def _fail(exc: Exception) -> None:
    errors.print(f"[red]{exc}[/red]")
    raise typer.Exit(2)


@staff_app.command("add")
def staff_add(username: str = typer.Argument(..., help="lower-case login name"),
              role: str = typer.Option(..., help="risk, finance, payments, controller or viewer"),
              name: str = typer.Option("", help="the person's full name")) -> None:
    """Add a staff user."""
    from paycore.console import staff

    password = _password()
    try:
        user = in_transaction(lambda conn: staff.add_user(conn, username, role, password,
                                                          full_name=name))
    except staff.StaffError as exc:
        _fail(exc)
    console.print(f"staff user {user.username} ({user.role.value}) added")


@staff_app.command("disable")
def staff_disable(username: str) -> None:
    """Disable a staff user at once: their sessions end and the API keys that name them
    as holder are revoked."""
    from paycore.console import staff

    try:
        disabled = in_transaction(lambda conn: staff.disable_user(conn, username))
    except staff.StaffError as exc:
        _fail(exc)
    revoked = ", ".join(key.id for key in disabled.revoked_keys) or "none"
    console.print(f"staff user {username} disabled; API keys naming them revoked: {revoked}")


@staff_app.command("reset")
def staff_reset(username: str) -> None:
    """Set a new password (and lift a lock-out; re-enables a disabled user)."""
    from paycore.console import staff

    password = _password()
    try:
        in_transaction(lambda conn: staff.reset_password(conn, username, password))
    except staff.StaffError as exc:
        _fail(exc)
    console.print(f"staff user {username}: new password set, lock-out lifted")


@staff_app.command("list")
def staff_list() -> None:
    """The staff users, their roles and state."""
    from rich.table import Table  # rich loads with the commands that print tables

    from paycore.console import staff

    async def go(conn: AsyncConnection) -> list[staff.StaffUser]:
        return await staff.list_users(conn)
    table = Table("username", "name", "role", "status", "failed logins", "locked until",
                  "last login")
    for u in read_only(go):
        table.add_row(u.username, u.full_name, u.role.value, u.status, str(u.failed_logins),
                      u.locked_until.isoformat(timespec="seconds") if u.locked_until else "",
                      u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(staff_app, name="staff")
