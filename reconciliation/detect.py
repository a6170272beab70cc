"""Which statement format a file is in, from its first bytes.

CSV cannot be told from other text reliably, so it is never detected: a CSV file
comes with its `CsvProfile`.
"""

from __future__ import annotations

import re

_CAMT = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(camt\.05[34])\.001\.\d\d")
_MT940_TAGS = (re.compile(rb"^:20:", re.M), re.compile(rb"^:25:", re.M),
               re.compile(rb"^:60[FM]:", re.M))


def detect_format(data: bytes) -> str | None:
    """`camt.053`, `camt.054`, `mt940`, `bai2`, `ofx`, or None when unknown."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<?xml") or head.startswith(b"<Document"):
        if b"<OFX" in head or b"<?OFX" in head:
            return "ofx"
        match = _CAMT.search(head)
        return match.group(1).decode() if match else None
    if head.startswith(b"OFXHEADER:") or head.startswith(b"<OFX>"):
        return "ofx"
    if re.match(rb"01,[^,\r\n]*,[^,\r\n]*,\d{6},", head):
        return "bai2"
    if head.startswith(b"{1:") or all(tag.search(data) for tag in _MT940_TAGS):
        return "mt940"
    return None
