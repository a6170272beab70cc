"""Journal entry ids: time-ordered UUIDs (version 7, RFC 9562).

An entry id is the key of `journal_entries` and of the postings' entry index. Random
(version 4) ids land anywhere in those two B-trees, so every entry of a batch touches a
different leaf page; ids that begin with the time land at the right-hand edge, where the
pages just written still are. The 74 random bits keep the ids unguessable and unique.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_RFC_VARIANT = 0x2 << 62
_RANDOM = ((1 << 80) - 1) & ~(0xF << 76) & ~(0x3 << 62)


def _entry_id_int() -> int:
    # the 48-bit Unix time in milliseconds, then version, random bits, variant, random bits
    return ((time.time_ns() // 1_000_000) << 80 | _VERSION_7 | _RFC_VARIANT
            | int.from_bytes(os.urandom(10), "big") & _RANDOM)


def new_entry_id() -> uuid.UUID:
    return uuid.UUID(int=_entry_id_int())


def new_entry_id_text() -> str:
    """The same, as the canonical text the database reads (no `UUID` object to build)."""
    h = f"{_entry_id_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
