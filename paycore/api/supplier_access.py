"""What a merchant's key may do for a supplier, and the payout rules this server runs by.

A key acts for a supplier only if its merchant is bound to it (`paycore bindings add`);
otherwise 403 `supplier-not-bound` and nothing is read or written. The payout controls
(cooling-off, approval thresholds) are `app.state.payout_controls` when the embedding
code put them there, else the environment's (`paycore.payout_controls`).
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
from paycore.api.auth import Principal
from paycore.api.problems import ApiProblem
from paycore.payout_controls import controls_from_env
from paycore.supplier_bindings import is_bound


class SupplierNotBound(ApiProblem):
    status, code, replayable = 403, "supplier-not-bound", False


async def require_binding(conn: AsyncConnection, principal: Principal, supplier_id: str) -> None:
    if not await is_bound(conn, principal.merchant_id, supplier_id):
        raise SupplierNotBound(f"merchant {principal.merchant_id} is not bound to supplier "
                               f"{supplier_id}: it may not register its accounts or move its "
                               "money (an operator binds them: paycore bindings add)",
                               supplier_id=supplier_id)


def controls_of(request: Request) -> gateways.PayoutControls:
    found = getattr(request.app.state, "payout_controls", None)
    return found if isinstance(found, gateways.PayoutControls) else controls_from_env()
