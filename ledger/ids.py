"""Journal entry ids: time-ordered UUIDs (version 7, RFC 9562).

An entry id is the key of `journal_entries` and leads the postings' primary key. Random
(version 4) ids land anywhere in those two B-trees, so every entry of a batch touches a
different leaf page; ids that begin with the time land at the right-hand edge, where the
pages just written still are. The 74 random bits keep the ids unguessable and unique.
"""

from __future__ import annotations

import os
import time
import uuid


def new_entry_id() -> uuid.UUID:
    return uuid.UUID(new_entry_id_texts(1)[0])


#: the variant nibble (binary 10xx) from any hex digit's two low bits
_VARIANT_NIBBLE = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_entry_id_texts(n: int) -> list[str]:
    """`n` ids as canonical text, for a batch: one read of the system's random source for
    all of them, and the text put together from hex digits (formatting a 128-bit integer
    per id cost more than the rest of an entry's id, hash head and JSON together). Each
    is the 48-bit Unix time in milliseconds, the version 7, 12 random bits, the variant and
    62 random bits."""
    noise = os.urandom(10 * n).hex()  # 20 hex digits an id, 74 bits of them used
    ids: list[str] = []
    clock = time.time_ns
    last_ms, t = -1, ""
    for at in range(0, 20 * n, 20):
        ms = clock() // 1_000_000
        if ms != last_ms:
            last_ms, t = ms, f"{ms:012x}"
        r = noise[at:at + 20]
        ids.append(f"{t[:8]}-{t[8:]}-7{r[:3]}-{_VARIANT_NIBBLE[r[3]]}{r[4:7]}-{r[7:19]}")
    return ids
