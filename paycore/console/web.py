"""What every console page shares: the signed-in staff user (session cookie), CSRF checks
on every form, who may act where, server-side paging and sorting, money and time
formatting, exports (CSV, XLSX), and rendering.

Pages are server-rendered HTML forms that work without JavaScript; nothing is fetched from
outside (no CDN): the one stylesheet is served from the package.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import io
import os
import secrets
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import ledger
from paycore.console import audit, staff
from paycore.console.staff import Role, Session

HERE = Path(__file__).parent
COOKIE = "paycore_console"
LOGIN_CSRF_COOKIE = "paycore_console_login"
MAX_PER_PAGE = 200
EXPORT_LIMIT = 100_000

#: which roles may act in which area (shared with the command line's `--as`)
ACTORS = staff.ACTORS


@dataclass(frozen=True)
class ConsoleSettings:
    timezone: zoneinfo.ZoneInfo
    secure_cookies: bool

    @classmethod
    def from_env(cls) -> ConsoleSettings:
        zone = os.environ.get("PAYCORE_TIMEZONE", "Asia/Shanghai")
        return cls(timezone=zoneinfo.ZoneInfo(zone),
                   secure_cookies=os.environ.get("PAYCORE_CONSOLE_INSECURE_COOKIES", "") != "1")


class LoginRequired(Exception):
    """No live session: the person is sent to the login page."""


class Refused(Exception):
    """The person may not do this (role, CSRF, four eyes): a 403 page saying why."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# -- formatting ------------------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    """Money in a cell: minor units and currency, shown with thousands separators."""

    minor: int
    currency: str

    @property
    def decimal(self) -> Decimal:
        return Decimal(ledger.from_minor(self.minor, self.currency).amount)

    def __str__(self) -> str:
        exponent = ledger.minor_exponent(self.currency)
        return f"{self.decimal:,.{exponent}f} {self.currency}"


@dataclass(frozen=True)
class Link:
    text: str
    href: str

    def __str__(self) -> str:
        return self.text


def settings_of(request: Request) -> ConsoleSettings:
    found: ConsoleSettings = request.app.state.console_settings
    return found


def local_time(value: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def end_of_local_day(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The last instant of `day` in the business's time zone (inclusive cut-off)."""
    return (dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
            - dt.timedelta(microseconds=1))


def today_local(zone: zoneinfo.ZoneInfo) -> dt.date:
    return dt.datetime.now(zone).date()


def cell_text(value: object, zone: zoneinfo.ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return local_time(value, zone)
    return str(value)


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.autoescape = True


# -- sessions and CSRF -----------------------------------------------------------------


def engine_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def session_of(request: Request) -> Session:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired
    async with engine_of(request).connect() as conn:
        session = await staff.load_session(conn, token)
    if session is None:
        raise LoginRequired
    return session


def storable_text(form: Any) -> None:
    """Refuse a form with a field no database keeps: a NUL (`%00`; PostgreSQL's text cannot
    hold one) or a lone surrogate (no UTF-8). Checked before anything is read or recorded,
    so neither the action nor its audit row meets the database with it."""
    for name, value in form.multi_items():
        for text in (name, value) if isinstance(value, str) else (name,):
            if "\x00" in text:
                raise Refused(f"the form's field {_printable(name)!r} contains a NUL "
                              "character (U+0000), which no field accepts: remove it and "
                              "send the form again", status=422)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise Refused(f"the form's field {_printable(name)!r} contains a character "
                              "that is no text (a lone surrogate): remove it and send the "
                              "form again", status=422) from None


def _printable(name: str) -> str:
    return name.replace("\x00", "").encode("utf-8", "replace").decode()[:40]


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The form's fields, once its CSRF token is the session's (else refused, recorded) and
    every field is text the database keeps (else refused)."""
    form = await request.form()
    storable_text(form)
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
        await audit.record_refusal(engine_of(request), actor=session.user.actor,
                                   role=session.user.role.value, action="form.csrf",
                                   subject=request.url.path, reason="",
                                   why="the form's CSRF token is missing or wrong")
        raise Refused("this form has no valid CSRF token (an old page, or a page not from "
                      "this console): reload the page and try again")
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def may_act(request: Request, session: Session, area: str, action: str,
                  subject: str) -> None:
    """Refuse (and record) an action outside the user's role."""
    if session.user.role not in ACTORS[area]:
        why = (f"role {session.user.role.value} may not act on {area} pages"
               + (" (a viewer can read, not act)" if session.user.role is Role.VIEWER else ""))
        await audit.record_refusal(engine_of(request), actor=session.user.actor,
                                   role=session.user.role.value, action=action,
                                   subject=subject, reason="", why=why)
        raise Refused(why)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


# -- paging and sorting on the server --------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    #: the SQL expression to ORDER BY; None: not sortable
    sort: Any = None
    numeric: bool = False


@dataclass
class Table:
    """A page of a list: its columns, the rows (dicts by column key), and where to go."""

    id: str
    title: str
    columns: Sequence[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    page: int = 1
    per_page: int = 50
    has_next: bool = False
    sort: str = ""
    direction: str = "asc"
    base_query: dict[str, str] = field(default_factory=dict)
    #: a caption for screen readers and the page
    caption: str = ""

    def url(self, **changes: object) -> str:
        query = {**self.base_query, "page": str(self.page), "sort": self.sort,
                 "dir": self.direction}
        query.update({k: str(v) for k, v in changes.items()})
        return "?" + urlencode({k: v for k, v in query.items() if v not in ("", None)})

    def sort_url(self, key: str) -> str:
        flip = "desc" if self.sort == key and self.direction == "asc" else "asc"
        return self.url(sort=key, dir=flip, page=1)

    def aria_sort(self, key: str) -> str:
        if self.sort != key:
            return "none"
        return "ascending" if self.direction == "asc" else "descending"


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int
    sort: str
    direction: str
    export: str | None

    @classmethod
    def of(cls, request: Request, default_sort: str, default_direction: str = "asc"
           ) -> PageRequest:
        q = request.query_params
        export = q.get("format") if q.get("format") in ("csv", "xlsx") else None
        try:
            page = max(1, int(q.get("page", "1")))
            per_page = min(MAX_PER_PAGE, max(1, int(q.get("per_page", "50"))))
        except ValueError:
            page, per_page = 1, 50
        direction = q.get("dir", default_direction)
        return cls(page, per_page, q.get("sort", default_sort) or default_sort,
                   direction if direction in ("asc", "desc") else default_direction, export)


async def fill(conn: AsyncConnection, table: Table, query: sa.Select[Any], pr: PageRequest,
               row: Callable[[Any], dict[str, Any]], *, tiebreak: Sequence[Any] = ()) -> Table:
    """Run `query` sorted by the requested column (only a column the table declares sortable)
    and cut to the page: LIMIT/OFFSET on an index-backed order, one row more than the page to
    know whether a next page exists (no COUNT(*) over millions of rows)."""
    columns = {c.key: c for c in table.columns if c.sort is not None}
    chosen = columns.get(pr.sort) or next(iter(columns.values()), None)
    if chosen is not None:
        order = chosen.sort.desc() if pr.direction == "desc" else chosen.sort.asc()
        query = query.order_by(order, *[t.desc() if pr.direction == "desc" else t.asc()
                                        for t in tiebreak])
        table.sort = chosen.key
    table.direction = pr.direction
    if pr.export:
        rows = (await conn.execute(query.limit(EXPORT_LIMIT))).all()
        table.rows = [row(r) for r in rows]
        return table
    rows = (await conn.execute(query.limit(pr.per_page + 1)
                               .offset((pr.page - 1) * pr.per_page))).all()
    table.page, table.per_page = pr.page, pr.per_page
    table.has_next = len(rows) > pr.per_page
    table.rows = [row(r) for r in rows[:pr.per_page]]
    return table


# -- exports ---------------------------------------------------------------------------


def _export_value(value: object, zone: zoneinfo.ZoneInfo) -> object:
    if isinstance(value, Amount):
        return value.decimal
    if isinstance(value, Link):
        return value.text
    if isinstance(value, dt.datetime):
        return local_time(value, zone)
    return value


def export(table: Table, fmt: str, zone: zoneinfo.ZoneInfo) -> Response:
    """The whole table (every page) as CSV or XLSX; money as an exact decimal with its
    currency in a column of its own."""
    header: list[str] = []
    for c in table.columns:
        header.append(c.label)
        if any(isinstance(r.get(c.key), Amount) for r in table.rows):
            header.append(f"{c.label} currency")
    money_cols = {c.key for c in table.columns
                  if any(isinstance(r.get(c.key), Amount) for r in table.rows)}
    body: list[list[object]] = []
    for r in table.rows:
        line: list[object] = []
        for c in table.columns:
            value = r.get(c.key)
            line.append(_export_value(value, zone))
            if c.key in money_cols:
                line.append(value.currency if isinstance(value, Amount) else "")
        body.append(line)
    name = f"{table.id}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    from paycore.console.exports import csv_row, xlsx_row

    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([csv_row(line) for line in body])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(table.id[:31])
    sheet.append(xlsx_row(sheet, header))
    for line in body:
        # openpyxl writes a Decimal's own digits into the sheet's XML: exact; text stays
        # text (a description starting with '=' is not a formula)
        sheet.append(xlsx_row(sheet, line))
    data = io.BytesIO()
    book.save(data)
    return Response(data.getvalue(), headers=headers, media_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))


# -- rendering -------------------------------------------------------------------------


def render(request: Request, template: str, session: Session | None, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    zone = settings_of(request).timezone
    context.update(
        request=request, session=session, user=session.user if session else None,
        csrf_token=session.csrf_token if session else "",
        zone=zone, zone_name=str(zone),
        cell=lambda v: cell_text(v, zone),
        when=lambda v: local_time(v, zone),
        may=lambda area: session is not None and session.user.role in ACTORS[area],
        nav_current=request.url.path)
    return templates.TemplateResponse(request, template, context, status_code=status)


def respond(request: Request, session: Session, template: str, table: Table,
            pr: PageRequest, **context: Any) -> Response:
    if pr.export:
        return export(table, pr.export, settings_of(request).timezone)
    return render(request, template, session, table=table, **context)


def redirect(url: str, note: str = "") -> RedirectResponse:
    if note:
        url += ("&" if "?" in url else "?") + urlencode({"note": note})
    return RedirectResponse(url, status_code=303)


def svg_bars(series: Sequence[tuple[str, Sequence[tuple[str, Decimal]]]], *, title: str,
             unit: str = "") -> Markup:
    """A small server-drawn bar chart (SVG, no script): one group per label, one bar per
    series value; with a title and a text description for screen readers."""
    width, height, pad = 640, 220, 30
    groups = [label for label, _ in series]
    names = sorted({name for _, values in series for name, _ in values})
    peak = max([v for _, values in series for _, v in values] + [Decimal(1)])
    slot = (width - 2 * pad) / max(1, len(groups))
    bar = slot / max(1, len(names) + 1)
    palette = ["#1f5fa8", "#c4621d", "#2e8540", "#8b1e3f", "#5b4a9e", "#6b6b6b", "#a37f00"]
    parts = [f'<svg role="img" viewBox="0 0 {width} {height + 40}" width="100%" '
             f'aria-labelledby="t-{abs(hash(title))}"><title id="t-{abs(hash(title))}">'
             f'{Markup.escape(title)}</title>']
    for g, (label, values) in enumerate(series):
        x0 = pad + g * slot
        for name, value in values:
            i = names.index(name)
            h = Decimal(height - pad) * value / peak
            parts.append(f'<rect x="{x0 + i * bar:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{palette[i % len(palette)]}">'
                         f'<title>{Markup.escape(label)} {Markup.escape(name)}: '
                         f'{value:,.2f}{unit}</title></rect>')
        parts.append(f'<text x="{x0 + slot / 2:.1f}" y="{height + 14}" font-size="10" '
                     f'text-anchor="middle">{Markup.escape(label)}</text>')
    for i, name in enumerate(names):
        parts.append(f'<rect x="{pad + i * 110}" y="{height + 24}" width="10" height="10" '
                     f'fill="{palette[i % len(palette)]}"/><text x="{pad + i * 110 + 14}" '
                     f'y="{height + 33}" font-size="10">{Markup.escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
