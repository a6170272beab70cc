"""Supply-chain finance: applications, decisions, loans, accrual, repayment, settlement."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the root app (none yet)."""
