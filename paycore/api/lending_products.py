"""Loan products over HTTP: the risk team defines, changes and retires products at run time.

    GET  /v1/lending/products[?on=DATE]          each product's version in force
    GET  /v1/lending/products/{code}             every version: who, when, why, what
    POST /v1/lending/products                    define (version 1)
    POST /v1/lending/products/{code}/versions    change: a new version for new loans
    POST /v1/lending/products/{code}/retirement  no new loans from a day on

Writing needs `lending:products` (a back-office scope: no borrower's key holds it). Rates
are decimal strings ("0.09"), never JSON numbers: a float is refused, as a product that
cannot work is (422, problem+json, with the reason), and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

import ledger
from lending import catalogue
from lending.errors import ProductNotFound
from paycore.api.auth import Principal, requires
from paycore.api.deps import DomainIdempotencyKey, Engine, ReadConnection
from paycore.api.keys import declare_scope
from paycore.api.lending import CONFIG
from paycore.api.models import ApiDate

declare_scope("lending:products", "define, change and retire loan products")

router = APIRouter(prefix="/v1/lending/products", tags=["lending"])

Reader = Annotated[Principal, requires("lending:read")]
Designer = Annotated[Principal, requires("lending:products")]
Code = Annotated[str, Path(max_length=40, description="the product's code")]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class ProductOut(BaseModel):
    code: str
    version: int = Field(description="0: built into the code")
    status: str
    effective_from: dt.date | None
    changed_by: str
    reason: str
    terms: dict[str, Any]

    @classmethod
    def of(cls, v: catalogue.ProductVersion) -> ProductOut:
        return cls(code=v.product.code, version=v.product.version, status=v.status,
                   effective_from=None if v.product.version == 0 else v.effective_from,
                   changed_by=v.changed_by, reason=v.reason,
                   terms=catalogue.to_definition(v.product))


class DefineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=40, examples=["short_sc"])
    terms: dict[str, Any] = Field(description="name, currency, min_amount_minor, "
                                  "max_amount_minor, min_term_days, max_term_days, annual_rate "
                                  "(decimal string), and optionally day_count, "
                                  "penalty_annual_rate, origination_fee, extension, "
                                  "non_performing_after_days, waterfall, maturity_roll, market")
    effective_from: ApiDate | None = None
    reason: str = Field("", max_length=2000)


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: dict[str, Any]
    effective_from: ApiDate | None = None
    reason: str = Field("", max_length=2000)


class RetireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_from: ApiDate | None = None
    reason: str = Field(max_length=2000)


def _actor(principal: Principal) -> str:
    return f"{principal.merchant_id}/{principal.key_id}"


@router.get("")
async def list_products(_: Reader, conn: ReadConnection, on: ApiDate | None = None
                        ) -> list[ProductOut]:
    """Each product's version in force on `on` (default today)."""
    return [ProductOut.of(v) for v in await catalogue.products_now(conn, CONFIG, on or _today())]


@router.get("/{code}")
async def show_product(code: Code, _: Reader, conn: ReadConnection) -> list[ProductOut]:
    """Every version of a product, oldest first: the audit trail of its terms."""
    history = await catalogue.product_history(conn, code)
    if not history and code in CONFIG.products:
        history = [catalogue.ProductVersion(CONFIG.products[code], "active", dt.date.min,
                                            "code", "built in", None)]
    if not history:
        raise ProductNotFound(code)
    return [ProductOut.of(v) for v in history]


@router.post("", status_code=201)
async def define(body: DefineIn, principal: Designer, engine: Engine,
                 _key: DomainIdempotencyKey) -> ProductOut:
    """Define a new product (version 1)."""
    v = await ledger.transact(engine, lambda c: catalogue.define_product(
        c, body.code, body.terms, effective_from=body.effective_from or _today(),
        actor=_actor(principal), reason=body.reason, config=CONFIG))
    return ProductOut.of(v)


@router.post("/{code}/versions", status_code=201)
async def change(code: Code, body: ChangeIn, principal: Designer, engine: Engine,
                 _key: DomainIdempotencyKey) -> ProductOut:
    """A new version with `changes`, for loans applied for from `effective_from` on."""
    v = await ledger.transact(engine, lambda c: catalogue.change_product(
        c, code, body.changes, effective_from=body.effective_from or _today(),
        actor=_actor(principal), reason=body.reason, config=CONFIG))
    return ProductOut.of(v)


@router.post("/{code}/retirement", status_code=201)
async def retire(code: Code, body: RetireIn, principal: Designer, engine: Engine,
                 _key: DomainIdempotencyKey) -> ProductOut:
    """No new loans from `effective_from` on; loans already booked run to their end."""
    v = await ledger.transact(engine, lambda c: catalogue.retire_product(
        c, code, effective_from=body.effective_from or _today(), actor=_actor(principal),
        reason=body.reason, config=CONFIG))
    return ProductOut.of(v)
