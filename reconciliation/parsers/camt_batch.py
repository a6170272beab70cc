"""Whether a camt batch entry's details agree with the entry they explain.

A batch entry (`Ntry` with `NtryDtls/Btch` or several `TxDtls`) states its own net amount,
and its details state the count, the total and each item. When they disagree (the count
is not the number of items listed, the items do not add up to the total, an amount is in
another currency, gross less fees is not the net), the file is still a faithful record of
what the bank booked — the entry's amount is what moved — but the batch cannot be trusted
to say which captures it settles or what the fee was. So the line is stored with the
contradictions named, and the net-of-fees rule leaves it to a person.
"""

from __future__ import annotations

from moneyed import Money

from reconciliation.errors import format_money
from reconciliation.parsers.camt_xml import CamtDocument, Element

#: where an item's own amount sits, by camt version
_ITEM_AMOUNT = ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt")


def contradictions(
    doc: CamtDocument, entry: Element, batch: Element | None, details: list[Element],
    net: Money, count: int | None, gross: Money | None, fees: Money | None,
) -> tuple[str, ...]:
    found: list[str] = []
    currency = net.currency.code
    where = doc.where(entry)
    stated_count = doc.text(batch, "NbOfTxs") if batch is not None else None
    if stated_count is not None and details and count is not None and count != len(details):
        found.append(f"{where}: Btch/NbOfTxs says {count} transactions, {len(details)} "
                     f"TxDtls are listed")
    if batch is not None:
        indicator = doc.text(batch, "CdtDbtInd")
        entry_indicator = doc.text(entry, "CdtDbtInd")
        if indicator and entry_indicator and indicator != entry_indicator:
            found.append(f"{where}: Btch/CdtDbtInd is {indicator}, the entry is "
                         f"{entry_indicator}")
    for label, money in (("the batch total (TtlAmt)", gross), ("the charges", fees)):
        if money is not None and money.currency.code != currency:
            found.append(f"{where}: {label} is in {money.currency.code}, the entry in "
                         f"{currency}")
    items = [_item_amount(doc, detail) for detail in details]
    item_currencies = {m.currency.code for m in items if m is not None}
    if item_currencies - {currency}:
        found.append(f"{where}: items are in {', '.join(sorted(item_currencies - {currency}))}"
                     f", the entry in {currency}")
    elif items and all(m is not None for m in items) and gross is not None \
            and gross.currency.code == currency and len(items) > 1:
        total = sum((m for m in items if m is not None), Money(0, currency))
        if total != abs(gross):
            found.append(f"{where}: the {len(items)} items add up to {format_money(total)}, "
                         f"the batch total (TtlAmt) is {format_money(abs(gross))}")
    if gross is not None and fees is not None and gross.currency.code == currency \
            and fees.currency.code == currency and abs(gross) - abs(fees) != abs(net):
        found.append(f"{where}: gross {format_money(abs(gross))} less charges "
                     f"{format_money(abs(fees))} is not the entry's {format_money(abs(net))}")
    return tuple(found)


def _item_amount(doc: CamtDocument, detail: Element) -> Money | None:
    for path in _ITEM_AMOUNT:
        if doc.find(detail, path) is not None:
            return doc.amount(detail, path, indicator_path=None)
    return None
