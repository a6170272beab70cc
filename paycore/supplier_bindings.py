"""Which suppliers a merchant may act for (its API keys: register bank accounts, request,
approve and read supplier payouts). An operator binds them (`paycore bindings add`);
every change is in the payout-control audit trail. No binding, no access: a merchant
cannot pay out money another merchant's sales put on a supplier's payable."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import gateways
from paycore.schema import api_supplier_bindings

__all__ = ["bind_supplier", "bound_suppliers", "is_bound", "unbind_supplier"]


async def bind_supplier(conn: AsyncConnection, merchant_id: str, supplier_id: str, *,
                        actor: str) -> bool:
    """Bind; False if it already was."""
    if await is_bound(conn, merchant_id, supplier_id):
        return False
    now = dt.datetime.now(dt.UTC)
    await conn.execute(api_supplier_bindings.insert().values(
        merchant_id=merchant_id, supplier_id=supplier_id, created_by=actor, created_at=now))
    await gateways.record_control_event(
        conn, actor=actor, action="binding.added", supplier_id=supplier_id,
        subject_id=f"merchant:{merchant_id}"[:64], now=now)
    return True


async def unbind_supplier(conn: AsyncConnection, merchant_id: str, supplier_id: str, *,
                          actor: str) -> bool:
    done = await conn.execute(api_supplier_bindings.delete().where(
        api_supplier_bindings.c.merchant_id == merchant_id,
        api_supplier_bindings.c.supplier_id == supplier_id))
    if done.rowcount:
        await gateways.record_control_event(
            conn, actor=actor, action="binding.removed", supplier_id=supplier_id,
            subject_id=f"merchant:{merchant_id}"[:64])
    return bool(done.rowcount)


async def is_bound(conn: AsyncConnection, merchant_id: str, supplier_id: str) -> bool:
    found = await conn.scalar(sa.select(sa.func.count()).select_from(api_supplier_bindings)
                              .where(api_supplier_bindings.c.merchant_id == merchant_id,
                                     api_supplier_bindings.c.supplier_id == supplier_id))
    return bool(found)


async def bound_suppliers(conn: AsyncConnection, merchant_id: str | None = None
                          ) -> list[tuple[str, str]]:
    """(merchant, supplier) pairs, of one merchant or all."""
    query = sa.select(api_supplier_bindings.c.merchant_id, api_supplier_bindings.c.supplier_id
                      ).order_by(api_supplier_bindings.c.merchant_id,
                                 api_supplier_bindings.c.supplier_id)
    if merchant_id is not None:
        query = query.where(api_supplier_bindings.c.merchant_id == merchant_id)
    return [(r.merchant_id, r.supplier_id) for r in await conn.execute(query)]
