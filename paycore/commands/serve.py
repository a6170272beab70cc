"""`paycore serve`: the HTTP API."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the root app (none yet)."""
