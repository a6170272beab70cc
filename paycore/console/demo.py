"""Demo staff for `paycore serve --demo`: one user per role on the demo's books, with
passwords printed for the person trying the console (never do this with real books)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.console import staff

#: (username, role, full name); each signs in with DEMO_PASSWORD
DEMO_STAFF = (
    ("risk.demo", "risk", "Wang Fang (risk officer)"),
    ("finance.demo", "finance", "Li Wei (finance clerk)"),
    ("payments.demo", "payments", "Zhao Min (payments operator)"),
    ("payments2.demo", "payments", "Chen Jie (second payments operator)"),
    ("controller.demo", "controller", "Sun Li (controller)"),
    ("viewer.demo", "viewer", "Zhou Yan (auditor, read only)"),
)
DEMO_PASSWORD = "demo-password-2026"


async def ensure_demo_staff(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    """Create (or reset to the demo password) one staff user per role."""
    async with engine.begin() as conn:
        for username, role, name in DEMO_STAFF:
            if await staff.get_user(conn, username) is None:
                await staff.add_user(conn, username, role, DEMO_PASSWORD, full_name=name)
            else:
                await staff.reset_password(conn, username, DEMO_PASSWORD)
    return [(u, r, DEMO_PASSWORD) for u, r, _ in DEMO_STAFF]


HOW_TO_OPEN = ("Open the operations console on these books: run [bold]paycore serve --demo[/bold] "
               "and browse to http://127.0.0.1:8000/console — it prints a demo user for each "
               "role (risk, finance, payments, controller, viewer) and their password.")
