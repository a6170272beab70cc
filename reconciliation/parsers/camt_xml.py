"""Namespace-aware reading of an ISO 20022 document with lxml, naming elements by path.

The namespace is read from the document, so one reader serves every version.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, TypeAlias

from lxml import etree
from moneyed import Money

from reconciliation.amounts import Reader

#: lxml ships no type information (no lxml-stubs here), so elements are untyped
Element: TypeAlias = Any

_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:(camt\.05[34])\.(001\.(\d\d))")


def parse_xml(data: bytes, reader: Reader) -> Element:
    # No DTDs, entities or network: a statement file comes from outside.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root: Element = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise reader.unreadable(f"line {exc.lineno}", str(exc.msg)) from None
    return root


def message_of(root: Element, reader: Reader) -> tuple[str, str, int]:
    """(`camt.053`, `001.08`, 8) from the root element's namespace."""
    namespace = etree.QName(root).namespace or ""
    match = _NAMESPACE.fullmatch(namespace)
    if match is None:
        raise reader.unreadable(
            f"element {etree.QName(root).localname} (line {root.sourceline})",
            f"namespace {namespace!r} is not an ISO 20022 camt.053 or camt.054 message",
        )
    return match.group(1), match.group(2), int(match.group(3))


def element_path(element: Element) -> str:
    """`Stmt/Ntry[3]/Amt`: what a person searching the file for the fault needs."""
    parts: list[str] = []
    current: Element | None = element
    while current is not None:
        name = etree.QName(current).localname
        parent = current.getparent()
        if parent is not None:
            siblings = [c for c in parent if c.tag == current.tag]
            if len(siblings) > 1:
                name += f"[{siblings.index(current) + 1}]"
        if parent is not None or name != "Document":
            parts.append(name)
        current = parent
    return "/".join(reversed(parts))


class CamtDocument:
    def __init__(self, namespace: str, reader: Reader) -> None:
        self.ns = namespace
        self.reader = reader

    def _q(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{step}" for step in path.split("/"))

    def where(self, element: Element, child: str = "") -> str:
        path = element_path(element) + (f"/{child}" if child else "")
        return f"element {path} (line {element.sourceline})"

    def find(self, element: Element, path: str) -> Element | None:
        found: Element | None = element.find(self._q(path))
        return found

    def findall(self, element: Element, path: str) -> list[Element]:
        return list(element.iterfind(self._q(path)))

    def text(self, element: Element | None, *paths: str) -> str | None:
        """The first of `paths` that is present and not blank."""
        if element is None:
            return None
        for path in paths:
            found = element.find(self._q(path))
            if found is not None and found.text and found.text.strip():
                return str(found.text.strip())
        return None

    def require(self, element: Element, path: str) -> Element:
        found = self.find(element, path)
        if found is None:
            raise self.reader.unreadable(self.where(element, path), "required element missing")
        return found

    def date(self, element: Element, path: str) -> dt.date | None:
        """A `Dt` or `DtTm` choice. The date is read as written: converting a local
        `DtTm` to UTC would move a booking made after 16:00 in Beijing to the day before."""
        holder = self.find(element, path)
        if holder is None:
            return None
        text = self.text(holder, "Dt", "DtTm")
        if text is None:
            raise self.reader.unreadable(self.where(holder), "neither Dt nor DtTm given")
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            raise self.reader.unreadable(self.where(holder), f"{text!r} is not a date") from None

    def amount(self, element: Element, path: str, *, indicator_path: str | None) -> Money:
        """An `Amt Ccy=".."` element, negative when its `CdtDbtInd` says DBIT."""
        amt = self.require(element, path)
        currency = self.reader.currency(amt.get("Ccy"), self.where(amt))
        money = self.reader.money(amt.text, currency, self.where(amt))
        if indicator_path is None:
            return money
        indicator = self.text(element, indicator_path)
        if indicator == "DBIT":
            return -money
        if indicator != "CRDT":
            raise self.reader.unreadable(
                self.where(element, indicator_path), f"credit/debit indicator {indicator!r}"
            )
        return money
