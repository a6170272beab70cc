"""The domains' commands, each module adding its own to the root `paycore` app.

Each module has `register(app)`; keeping them apart lets the payments, lending and
reconciliation commands grow without touching one another or `paycore.cli`.
"""

from __future__ import annotations

import typer

from paycore.commands import (
    checkpoints,
    lending,
    payments,
    payout_controls,
    products,
    reconciliation,
    serve,
    service,
    staff,
)

MODULES = (payments, lending, products, reconciliation, serve, checkpoints, payout_controls,
           service, staff)


def register_all(app: typer.Typer) -> None:
    for module in MODULES:
        module.register(app)
