"""Field 86 of an MT940 line: free text, or the `/CODE/value` structure most European
banks use (`/EREF/PI-1/NAME/ACME/REMI/INV 42`). The `mt-940` library leaves it a string."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

_CODES = frozenset({
    "EREF", "KREF", "MREF", "CRED", "DEBT", "NAME", "IBAN", "BIC", "REMI", "USTD",
    "ADDR", "ORDP", "BENM", "CNTP", "TRTP", "PREF", "MARF", "CSID", "PURP", "RTRN",
    "ULTC", "ULTD", "SVCL", "ISDT", "FX", "CHGS",
})


_LINE_WIDTH = 65


@dataclass(frozen=True, slots=True)
class LineDetails:
    end_to_end_id: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    remittance: str | None = None
    #: `/CHGS/` (e.g. `CNY12,34`): what the bank charged on the line
    charges: str | None = None
    text: str = ""


def read_details(text: str | None) -> LineDetails:
    flat = _unwrap(text or "")
    fields = _slash_fields(flat)
    if not fields:
        return LineDetails(text=" ".join(flat.split()))
    name = fields.get("NAME")
    account = fields.get("IBAN")
    if "CNTP" in fields:  # /CNTP/account/bic/name/city/
        parts = fields["CNTP"].split("/")
        account = account or (parts[0] or None)
        name = name or (parts[2] if len(parts) > 2 and parts[2] else None)
    remittance = fields.get("REMI") or fields.get("USTD")
    return LineDetails(
        end_to_end_id=_provided(fields.get("EREF")),
        counterparty_name=name,
        counterparty_account=account,
        remittance=remittance,
        charges=fields.get("CHGS"),
        text=remittance or " ".join(flat.split()),
    )


def _unwrap(text: str) -> str:
    """Banks hard-wrap field 86 at 65 characters, even inside a word or an IBAN; a
    shorter line ended where the bank meant a break."""
    lines = text.split("\n")
    joined = lines[0]
    for previous, line in pairwise(lines):
        joined += ("" if len(previous) >= _LINE_WIDTH else " ") + line
    return joined.strip()


def _provided(value: str | None) -> str | None:
    return None if not value or value.upper() in ("NOTPROVIDED", "NONREF") else value


def _slash_fields(text: str) -> dict[str, str]:
    if not text.startswith("/"):
        return {}
    tokens = text[1:].split("/")
    if tokens[0] not in _CODES:
        return {}
    fields: dict[str, str] = {}
    key: str | None = None
    value: list[str] = []
    for token in tokens:
        # a value may itself contain slashes (`/CNTP/iban/bic/name/city/`)
        if token in _CODES:
            if key is not None:
                fields.setdefault(key, "/".join(value).strip("/").strip())
            key, value = token, []
        else:
            value.append(token)
    if key is not None:
        fields.setdefault(key, "/".join(value).strip("/").strip())
    return {k: v for k, v in fields.items() if v or k in ("BENM", "ORDP")}
