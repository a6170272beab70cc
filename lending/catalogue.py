"""Loan products as data: defined, changed and retired at run time, every version kept.

The products built into the code (lending.products) are version 0. A product defined or
changed at run time is a row of `lending_products` per version, never updated: a change
is a new version, a retirement is a new row saying so, and the rows are the audit trail
(who, when, why, what). A loan records the (code, version) it was booked under, so a
change applies to new loans only. A definition is checked by building the `LoanProduct`
before anything is stored: a product that cannot work (a rate out of bounds, an empty
term or amount range, a waterfall missing a bucket) is refused with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

import ledger
from lending.calendar import RollConvention
from lending.config import LendingConfig
from lending.daycount import DayCount
from lending.errors import InvalidInput, InvalidProduct, ProductNotFound
from lending.money import RoundingMode
from lending.products import DpdBucket, ExtensionPolicy, Fee, LoanProduct
from lending.schema import products as products_table
from lending.waterfall import Bucket

__all__ = ["ProductVersion", "change_product", "define_product", "from_definition",
           "product_for_new_loan", "product_history", "product_versions", "products_now",
           "retire_product", "to_definition"]

log = structlog.get_logger("lending")

#: what `change` may set; the code and currency of a product never change (its GL
#: accounts are named by code and opened in its currency)
CHANGEABLE = ("name", "min_amount_minor", "max_amount_minor", "min_term_days",
              "max_term_days", "annual_rate", "day_count", "rounding", "penalty_annual_rate",
              "origination_fee", "extension", "non_performing_after_days", "waterfall",
              "maturity_roll", "market", "grace_days")


@dataclass(frozen=True)
class ProductVersion:
    product: LoanProduct
    status: str
    effective_from: dt.date
    changed_by: str
    reason: str
    recorded_at: dt.datetime | None

    @property
    def retired(self) -> bool:
        return self.status == "retired"


# -- definitions (JSON) ---------------------------------------------------------------


def _fee(fee: Fee | None) -> dict[str, Any] | None:
    if fee is None:
        return None
    return {"fixed_minor": fee.fixed_minor, "rate": str(fee.rate),
            "minimum_minor": fee.minimum_minor, "maximum_minor": fee.maximum_minor}


def to_definition(p: LoanProduct) -> dict[str, Any]:
    """A product's terms as JSON (rates as strings: exact decimals, never floats)."""
    return {
        "name": p.name, "currency": p.currency,
        "min_amount_minor": p.min_amount_minor, "max_amount_minor": p.max_amount_minor,
        "min_term_days": p.min_term_days, "max_term_days": p.max_term_days,
        "annual_rate": str(p.annual_rate), "day_count": p.day_count.value,
        "rounding": p.rounding.name, "penalty_annual_rate": str(p.penalty_annual_rate),
        "origination_fee": _fee(p.origination_fee),
        "extension": {"max_extensions": p.extension.max_extensions, "days": p.extension.days,
                      "fee": _fee(p.extension.fee)},
        "non_performing_after_days": p.non_performing_after_days,
        "dpd_buckets": [[b.label, b.from_days, b.to_days] for b in p.dpd_buckets],
        "waterfall": [b.value for b in p.waterfall],
        "maturity_roll": p.maturity_roll.value, "market": p.market,
        "grace_days": p.grace_days,
    }


def _decimal(value: Any, what: str) -> Decimal:
    # a binary float is refused with the rest: only exact decimals and whole numbers
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidProduct(f"{what} must be given as a decimal string (e.g. '0.10'), "
                             f"not a binary float or any other kind of value: {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise InvalidProduct(f"{what} must be a decimal number, got {value!r}") from None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProduct(f"{what} must be a whole number, got {value!r}")
    return value


def _fee_from(data: Any, what: str) -> Fee | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise InvalidProduct(f"{what} must be an object with fixed_minor, rate, minimum_minor, "
                             "maximum_minor")
    maximum = data.get("maximum_minor")
    return Fee(fixed_minor=_int(data.get("fixed_minor", 0), f"{what} fixed_minor"),
               rate=_decimal(data.get("rate", "0"), f"{what} rate"),
               minimum_minor=_int(data.get("minimum_minor", 0), f"{what} minimum_minor"),
               maximum_minor=None if maximum is None else _int(maximum, f"{what} maximum_minor"))


def _enum(kind: Any, value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise InvalidProduct(f"unknown {what} {value!r}; known: {known}") from None


def from_definition(code: str, data: Mapping[str, Any], version: int = 0) -> LoanProduct:
    """Build (and so validate) a product from its JSON terms."""
    unknown = set(data) - set(CHANGEABLE) - {"currency", "dpd_buckets"}
    if unknown:
        raise InvalidProduct(f"unknown product field(s): {', '.join(sorted(unknown))}")
    for required in ("name", "currency", "min_amount_minor", "max_amount_minor",
                     "min_term_days", "max_term_days", "annual_rate"):
        if data.get(required) is None:
            raise InvalidProduct(f"product {code!r} needs {required}")
    kw: dict[str, Any] = {
        "code": code, "name": str(data["name"]), "currency": str(data["currency"]),
        "version": version,
        "min_amount_minor": _int(data["min_amount_minor"], "min_amount_minor"),
        "max_amount_minor": _int(data["max_amount_minor"], "max_amount_minor"),
        "min_term_days": _int(data["min_term_days"], "min_term_days"),
        "max_term_days": _int(data["max_term_days"], "max_term_days"),
        "annual_rate": _decimal(data["annual_rate"], "annual_rate"),
    }
    if "penalty_annual_rate" in data:
        kw["penalty_annual_rate"] = _decimal(data["penalty_annual_rate"], "penalty_annual_rate")
    if "day_count" in data:
        kw["day_count"] = _enum(DayCount, data["day_count"], "day count")
    if "rounding" in data:
        name = str(data["rounding"]).upper()
        if name not in RoundingMode.__members__:
            raise InvalidProduct(f"unknown rounding {data['rounding']!r}; known: "
                                 f"{', '.join(RoundingMode.__members__)}")
        kw["rounding"] = RoundingMode[name]
    if "origination_fee" in data:
        kw["origination_fee"] = _fee_from(data["origination_fee"], "origination_fee")
    if data.get("extension") is not None:
        ext = data["extension"]
        if not isinstance(ext, Mapping):
            raise InvalidProduct("extension must be an object with max_extensions, days, fee")
        kw["extension"] = ExtensionPolicy(
            max_extensions=_int(ext.get("max_extensions", 1), "extension max_extensions"),
            days=_int(ext.get("days", 30), "extension days"),
            fee=_fee_from(ext.get("fee"), "extension fee"))
    if "non_performing_after_days" in data:
        kw["non_performing_after_days"] = _int(data["non_performing_after_days"],
                                               "non_performing_after_days")
    if data.get("dpd_buckets") is not None:
        kw["dpd_buckets"] = tuple(DpdBucket(str(b[0]), _int(b[1], "bucket start"),
                                            None if b[2] is None else _int(b[2], "bucket end"))
                                  for b in data["dpd_buckets"])
    if data.get("waterfall") is not None:
        kw["waterfall"] = tuple(_enum(Bucket, b, "waterfall bucket") for b in data["waterfall"])
    if "maturity_roll" in data:
        kw["maturity_roll"] = _enum(RollConvention, data["maturity_roll"], "maturity roll")
    if "grace_days" in data:
        kw["grace_days"] = _int(data["grace_days"], "grace_days")
    if data.get("market") is not None:
        kw["market"] = str(data["market"]).upper()
    return LoanProduct(**kw)


# -- reading ---------------------------------------------------------------------------

# (code, version) rows never change once written: a version read once is cached per
# database (engine), so the accrual run resolves each loan's product without a query
_VERSIONS: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], LoanProduct]] = (
    weakref.WeakKeyDictionary())


def _version_of(row: Any) -> ProductVersion:
    product = from_definition(row.code, row.definition, row.version)
    return ProductVersion(product, row.status, row.effective_from, row.changed_by, row.reason,
                          row.recorded_at)


async def product_versions(conn: AsyncConnection, keys: Iterable[tuple[str, int]]
                           ) -> dict[tuple[str, int], LoanProduct]:
    """The products for (code, version) pairs loans were booked under."""
    cache = _VERSIONS.setdefault(conn.engine.sync_engine, {})
    wanted = {k for k in keys if k[1] > 0}
    missing = wanted - set(cache)
    if missing:
        codes = {code for code, _ in missing}
        rows = await conn.execute(sa.select(products_table)
                                  .where(products_table.c.code.in_(sorted(codes))))
        for r in rows:
            cache[(r.code, r.version)] = from_definition(r.code, r.definition, r.version)
    return {k: cache[k] for k in wanted if k in cache}


async def product_history(conn: AsyncConnection, code: str) -> list[ProductVersion]:
    rows = await conn.execute(sa.select(products_table).where(products_table.c.code == code)
                              .order_by(products_table.c.version))
    return [_version_of(r) for r in rows]


async def products_now(conn: AsyncConnection, config: LendingConfig, on: dt.date
                       ) -> list[ProductVersion]:
    """Each product's version in force on `on` (retired ones included, marked), built-in
    products not (yet) changed at run time as version 0."""
    rows = await conn.execute(sa.select(products_table)
                              .where(products_table.c.effective_from <= on)
                              .order_by(products_table.c.code, products_table.c.version))
    latest: dict[str, Any] = {}
    for r in rows:
        latest[r.code] = r
    out = {code: _version_of(r) for code, r in latest.items()}
    for code, product in config.products.items():
        out.setdefault(code, ProductVersion(product, "active", dt.date.min, "code", "", None))
    return [out[code] for code in sorted(out)]


async def product_for_new_loan(conn: AsyncConnection, code: str, on: dt.date,
                               config: LendingConfig) -> LoanProduct:
    """The version of `code` a loan applied for on `on` is booked under."""
    row = (await conn.execute(
        sa.select(products_table)
        .where(products_table.c.code == code, products_table.c.effective_from <= on)
        .order_by(products_table.c.version.desc()).limit(1))).one_or_none()
    if row is None:
        if code in config.products:
            return config.products[code]
        known = {p.product.code for p in await products_now(conn, config, on)
                 if not p.retired}
        raise InvalidInput(f"unknown loan product {code!r}; known: "
                           f"{', '.join(sorted(known)) or 'none'}")
    if row.status == "retired":
        raise InvalidInput(f"loan product {code!r} was retired from {row.effective_from}; "
                           "it takes no new loans")
    version = _version_of(row)
    _VERSIONS.setdefault(conn.engine.sync_engine, {})[(code, row.version)] = version.product
    return version.product


# -- writing ---------------------------------------------------------------------------


async def _latest(conn: AsyncConnection, code: str) -> Any:
    query = (sa.select(products_table).where(products_table.c.code == code)
             .order_by(products_table.c.version.desc()).limit(1))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await conn.execute(query)).one_or_none()


async def _store(conn: AsyncConnection, product: LoanProduct, status: str,
                 effective_from: dt.date, actor: str, reason: str,
                 config: LendingConfig) -> ProductVersion:
    if not actor.strip():
        raise InvalidInput("a product change needs the name of who makes it")
    now = dt.datetime.now(dt.UTC)
    await conn.execute(sa.insert(products_table).values(
        code=product.code, version=product.version, status=status,
        effective_from=effective_from, definition=to_definition(product), changed_by=actor,
        reason=reason, recorded_at=now))
    # the product's GL accounts, opened with it (in this transaction)
    for spec in config.gl.specs(product):
        await ledger.ensure_account(conn, spec)
    if config.funding is not None:
        for spec in config.funding.specs(product.currency):
            await ledger.ensure_account(conn, spec)
    log.info("lending.product", code=product.code, version=product.version, status=status,
             effective_from=str(effective_from), actor=actor)
    return ProductVersion(product, status, effective_from, actor, reason, now)


async def define_product(conn: AsyncConnection, code: str, data: Mapping[str, Any], *,
                         effective_from: dt.date, actor: str, reason: str,
                         config: LendingConfig) -> ProductVersion:
    """A new product, version 1. A code already in use (at run time or in the code) is
    refused: change it instead."""
    if code in config.products or await _latest(conn, code) is not None:
        raise InvalidInput(f"loan product {code!r} exists; change it instead of defining it")
    product = from_definition(code, data, version=1)
    return await _store(conn, product, "active", effective_from, actor, reason, config)


async def _current(conn: AsyncConnection, code: str, config: LendingConfig
                   ) -> tuple[LoanProduct, int, Any]:
    row = await _latest(conn, code)
    if row is not None:
        return from_definition(code, row.definition, row.version), row.version, row
    if code in config.products:
        return config.products[code], 0, None
    raise ProductNotFound(code)


async def change_product(conn: AsyncConnection, code: str, changes: Mapping[str, Any], *,
                         effective_from: dt.date, actor: str, reason: str,
                         config: LendingConfig) -> ProductVersion:
    """A new version of `code` with `changes` applied, for loans applied for from
    `effective_from` on; loans booked before keep theirs."""
    if not changes:
        raise InvalidInput("nothing to change")
    refused = set(changes) - set(CHANGEABLE)
    if refused:
        raise InvalidProduct(f"cannot change {', '.join(sorted(refused))} of a product "
                             f"(changeable: {', '.join(CHANGEABLE)})")
    product, version, row = await _current(conn, code, config)
    if row is not None and row.status == "retired":
        raise InvalidInput(f"loan product {code!r} is retired; define a new product")
    if row is not None and effective_from < row.effective_from:
        raise InvalidInput(f"version {version} of {code!r} takes effect {row.effective_from}; "
                           f"a change cannot take effect before it ({effective_from})")
    data = {**to_definition(product), **changes}
    new = from_definition(code, data, version=version + 1)
    return await _store(conn, new, "active", effective_from, actor, reason, config)


async def retire_product(conn: AsyncConnection, code: str, *, effective_from: dt.date,
                         actor: str, reason: str, config: LendingConfig) -> ProductVersion:
    """No new loans from `effective_from`; loans booked under it run to their end."""
    if not reason.strip():
        raise InvalidInput("retiring a product needs a reason")
    product, version, row = await _current(conn, code, config)
    if row is not None and row.status == "retired":
        raise InvalidInput(f"loan product {code!r} is already retired")
    retired = dataclasses.replace(product, version=version + 1)
    return await _store(conn, retired, "retired", effective_from, actor, reason, config)
