"""Commission terms per supplier: the rate (exact to parts per million) and what happens
to the commission when a payment is refunded."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.errors import InvalidPaymentRequest, UnknownSupplier
from gateways.schema import supplier_terms
from gateways.store import utcnow
from gateways.types import RefundCommission, SupplierTerms

__all__ = ["get_supplier_terms", "set_supplier_terms"]

_PPM = Decimal(1_000_000)


async def set_supplier_terms(conn: AsyncConnection, terms: SupplierTerms) -> SupplierTerms:
    """Create or change a supplier's terms (they apply to captures and refunds from now)."""
    ppm = terms.commission_rate * _PPM
    if ppm != ppm.to_integral_value() or not 0 <= ppm <= _PPM:
        raise InvalidPaymentRequest(
            f"commission rate {terms.commission_rate} must lie in [0, 1], exact to 0.000001")
    values = {"commission_ppm": int(ppm),
              "refund_commission": RefundCommission(terms.refund_commission).value,
              "updated_at": utcnow()}
    done = await conn.execute(supplier_terms.update().where(
        supplier_terms.c.supplier_id == terms.supplier_id).values(**values))
    if done.rowcount == 0:
        await conn.execute(supplier_terms.insert().values(supplier_id=terms.supplier_id, **values))
    return await get_supplier_terms(conn, terms.supplier_id)


async def get_supplier_terms(conn: AsyncConnection, supplier_id: str) -> SupplierTerms:
    row = (await conn.execute(sa.select(supplier_terms).where(
        supplier_terms.c.supplier_id == supplier_id))).first()
    if row is None:
        raise UnknownSupplier(supplier_id)
    return SupplierTerms(supplier_id, Decimal(row.commission_ppm) / _PPM,
                         RefundCommission(row.refund_commission))
