"""MT940 as banks really write it: what may be read leniently, and what a refusal says.

The `mt-940` library reads `:61:` by the SWIFT pattern `6!n[4!n]2a[1!a]15d1!a3!c16x
[//16x][34x]`. Real exports break the `16x` of the customer reference (GLS/Atruvia,
German savings banks, SAP-generated files carry a 20-35 character end-to-end or invoice
reference there) and the 16x of the bank reference. Such a line is either refused with
the raw line echoed, or — worse — read with the reference cut at 16 characters and the
rest, bank reference included, pushed into the supplementary details.

A reference is text: its length changes no amount, date or balance. So a statement line
whose references run long is read in full through `RelaxedStatementLine` (the library's
own extension point: a replacement tag for `:61:`, chosen per statement only when such a
line is present, so every other file is read exactly as before), and a warning naming
the line and the deviation is kept with the statement.

Everything that could change a number stays refused; `explain` says which subfield of
the tag is wrong, where, and the form the standard expects, instead of echoing the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import mt940

#: the SWIFT maxima the relaxed tag lets a file exceed
CUSTOMER_REFERENCE_MAX = 16
BANK_REFERENCE_MAX = 16

#: the fixed part of `:61:` (dates, mark, amount, type) and then the references, read
#: with no length limit so that their real length can be measured
_LINE_61 = re.compile(
    r"(?P<head>\d{6}(?:\d{4}|\s{4})?R?[DC][A-Z]?[\n ]?[\d,]{1,15}[A-Z][A-Z0-9 ]{3})"
    r"(?P<customer>(?:(?!//)[^\n])*)(?://(?P<bank>[^\n]*))?"
)


class RelaxedStatementLine(mt940.tags.Statement):
    """`:61:` with references of any length; everything else as the library's own tag."""

    pattern: ClassVar[str] = r"""^
    (?P<year>\d{2})
    (?P<month>\d{2})
    (?P<day>\d{2})
    (?P<entry_month>\d{2}|\s{2})?
    (?P<entry_day>\d{2}|\s{2})?
    (?P<status>R?[DC])
    (?P<funds_code>[A-Z])?
    [\n ]?
    (?P<amount>[\d,]{1,15})
    (?P<id>[A-Z][A-Z0-9 ]{3})?
    (?P<customer_reference>(?:(?!//)[^\n])*)
    (//(?P<bank_reference>[^\n]*))?
    (\n(?P<extra_details>.*))?
    $"""


@dataclass(frozen=True, slots=True)
class Leniency:
    #: a message per deviation read anyway, naming line, field and what was accepted
    warnings: tuple[str, ...]
    #: the tags to give the library for this statement (empty: its defaults)
    tags: Mapping[int | str, mt940.tags.Tag]


def statement_line_leniency(occurrences: Sequence[tuple[int, str]]) -> Leniency:
    """The deviations in the `:61:` fields of one statement (`(line, value)` pairs)."""
    warnings: list[str] = []
    for line, value in occurrences:
        found = _LINE_61.match(value.strip("\n"))
        if found is None:
            continue  # not a reference problem: the strict reading will say what it is
        customer = found["customer"]
        if len(customer) > CUSTOMER_REFERENCE_MAX and found["bank"] is not None:
            warnings.append(
                f"line {line} (:61:): customer reference {customer!r} is {len(customer)} "
                f"characters, the standard allows {CUSTOMER_REFERENCE_MAX}; read in full")
        bank = (found["bank"] or "").rstrip()
        if len(bank) > BANK_REFERENCE_MAX:
            warnings.append(
                f"line {line} (:61:): bank reference {bank!r} is {len(bank)} characters, "
                f"the standard allows {BANK_REFERENCE_MAX}; read in full")
    tags: dict[int | str, mt940.tags.Tag] = {}
    if warnings:
        relaxed = RelaxedStatementLine()
        tags[relaxed.id] = relaxed
    return Leniency(tuple(warnings), tags)


# -- what a refusal says -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    pattern: str
    form: str


_AMOUNT = _Part("amount", r"\d{1,14},\d{0,3}(?![\d,])",
                "15d: digits with a comma as decimal mark, e.g. 1500,00 or 25,")
_PARTS: dict[str, tuple[_Part, ...]] = {
    "61": (
        _Part("value date", r"\d{6}", "6!n: YYMMDD"),
        _Part("entry date", r"(?:\d{4}|\s{4})?", "[4!n]: MMDD, or absent"),
        _Part("debit/credit mark", r"R?[DC]", "2a: C, D, RC or RD"),
        _Part("funds code", r"[A-Z]?\n?", "[1!a]: one letter, or absent"),
        _AMOUNT,
        _Part("transaction type", r"[A-Z][A-Z0-9 ]{3}", "1!a3!c: e.g. NTRF, NCHG, NMSC"),
    ),
    "balance": (
        _Part("debit/credit mark", r"[DC]", "1!a: C or D"),
        _Part("date", r"\d{6}", "6!n: YYMMDD"),
        _Part("currency", r"[A-Z]{3}", "3!a: ISO 4217 code, e.g. CNY"),
        _AMOUNT,
    ),
}
_BALANCE_TAGS = ("60", "62", "64", "65")
_DATE_PARTS = ("value date", "date")


def explain(tag: str, value: str) -> str:
    """What is wrong with a tag the library refused: the subfield, what was found and the
    form the standard expects. Falls back to the tag's whole pattern."""
    problem = find_problem(tag, value)
    if problem is not None:
        return problem
    parts = _PARTS.get(_kind(tag), ())
    form = " ".join(p.form.split(":")[0] for p in parts)
    expected = f" (expected the form {form} ...)" if form else ""
    return f"cannot read :{tag}: {value.strip()[:60]!r}{expected}"


def find_problem(tag: str, value: str) -> str | None:
    """The first subfield of a `:61:` or balance tag that is not of its standard form,
    or None when every subfield is."""
    parts = _PARTS.get(_kind(tag))
    if parts is None:
        return None
    text = value.strip()
    at = 0
    for part in parts:
        found = re.compile(part.pattern).match(text, at)
        if found is None or (part.name in _DATE_PARTS and not _is_date(found.group())):
            width = 6 if part.name in _DATE_PARTS else 18
            seen = text[at:at + width].split("\n")[0] or "nothing"
            return f"{part.name}: found {seen!r}, expected {part.form}"
        at = found.end()
    return None


def first_problem(tags: Mapping[str, Sequence[tuple[int, str]]]) -> tuple[str, str] | None:
    """Where (`line N (:tag:)`) and what the first malformed `:61:` or balance tag is."""
    for name, occurrences in tags.items():
        for line, value in occurrences:
            problem = find_problem(name, value)
            if problem is not None:
                return f"line {line} (:{name}:)", problem
    return None


def _kind(tag: str) -> str:
    return "balance" if tag[:2] in _BALANCE_TAGS else tag[:2]


def _is_date(digits: str) -> bool:
    month, day = int(digits[2:4]), int(digits[4:6])
    return 1 <= month <= 12 and 1 <= day <= 31
