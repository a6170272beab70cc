"""The one interface every statement format is read through."""

from __future__ import annotations

from typing import Protocol

from reconciliation.statement import Statement


class StatementParser(Protocol):
    #: the format name a caller passes to `parse_statement`, e.g. `camt.053`
    format: str

    def parse(self, data: bytes, *, source_name: str) -> list[Statement]:
        """Every statement in the file, or `UnreadableStatement` naming where it failed.

        Parsers only read; `reconciliation.validation` checks that what they read adds up.
        """
        ...
