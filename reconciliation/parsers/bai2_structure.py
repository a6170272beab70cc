"""The record nesting of a BAI2 file, checked before the `bai2` library sees it.

The library loops forever on a file cut off inside an account (it keeps re-reading the
last record), so a truncated file must never reach it. Checking the nesting here also
lets every complaint name its line.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciliation.amounts import Reader

_NAMES = {
    "01": "file header", "02": "group header", "03": "account identifier",
    "16": "transaction detail", "88": "continuation", "49": "account trailer",
    "98": "group trailer", "99": "file trailer",
}
#: which record may follow which: the file's grammar as a state machine
_FOLLOWS = {
    None: {"01"},
    "01": {"02", "88"},
    "02": {"03", "88"},
    "03": {"16", "49", "88"},
    "16": {"16", "49", "88"},
    "49": {"03", "98"},
    "98": {"02", "99"},
    "99": set(),
}
_CLOSER = {"01": ("99", "file trailer"), "02": ("98", "group trailer"),
           "03": ("49", "account trailer")}


@dataclass(frozen=True, slots=True)
class Record:
    code: str
    line: int
    text: str


def check_structure(lines: list[tuple[int, str]], reader: Reader) -> list[Record]:
    """The records in order, or `UnreadableStatement` at the first out of place."""
    records: list[Record] = []
    open_sections: list[Record] = []
    previous: str | None = None
    for number, text in lines:
        code = text[:2]
        if code not in _NAMES or (len(text) > 2 and text[2] != ","):
            raise reader.unreadable(f"line {number}", f"{text[:20]!r} is not a BAI2 record")
        if code not in _FOLLOWS[previous]:
            after = _NAMES[previous] if previous else "the start of the file"
            raise reader.unreadable(
                f"line {number}", f"a {_NAMES[code]} ({code}) cannot follow {after}"
            )
        if code in _CLOSER:
            open_sections.append(Record(code, number, text))
        elif code in ("49", "98", "99"):
            open_sections.pop()
        records.append(Record(code, number, text))
        previous = code if code != "88" else previous
    if open_sections:
        innermost = open_sections[-1]
        closer, name = _CLOSER[innermost.code]
        last = lines[-1][0] if lines else 1
        raise reader.unreadable(
            f"line {last}",
            f"the file ends inside the {_NAMES[innermost.code]} on line {innermost.line} "
            f"without its {name} ({closer}); the file is truncated",
        )
    if not records:
        raise reader.unreadable("line 1", "the file is empty")
    return records
