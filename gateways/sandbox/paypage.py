"""The bank's customer-facing pay page, and a tiny "browser" that clicks through it
(what a test or the demo does in place of a customer)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request

from gateways.bank import PaymentInstruction
from gateways.protocols.amounts import minor_to_decimal_text
from gateways.sandbox.records import Txn

__all__ = ["PayPageResult", "click_through", "page", "paid_page", "pay_page", "read_form"]

_FORM_ACTION = re.compile(r'<form id="pay" method="post" action="([^"]+)"')


@dataclass(frozen=True)
class PayPageResult:
    status_code: int
    paid: bool
    text: str


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="UTF-8"/><title>{html.escape(title)}'
            f"</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def pay_page(bank_name: str, merchant_id: str, txn: Txn) -> str:
    """GET /pay/{token}: the order, an account field, Pay and Cancel."""
    amount = minor_to_decimal_text(txn.amount_minor, txn.currency)
    body = (
        f"<p>Merchant: {html.escape(merchant_id)}</p>"
        f"<p>Order: {html.escape(txn.reference)}</p>"
        f"<p>{html.escape(txn.description)}</p>"
        f'<p>Amount: <span id="amount">{amount}</span> {txn.currency}</p>'
        f'<form id="pay" method="post" action="/pay/{html.escape(txn.token)}">'
        '<label>Account <input name="account"/></label>'
        '<button name="action" value="pay">Pay</button>'
        '<button name="action" value="cancel">Cancel</button></form>'
    )
    return page(bank_name, body)


def paid_page(bank_name: str, return_url: str) -> str:
    back = html.escape(return_url)
    return page(bank_name, f'<p>Payment successful.</p>'
                           f'<p><a id="return" href="{back}">Back to the shop</a></p>')


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (Starlette's own form parser needs
    python-multipart, which nothing else here needs)."""
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


async def click_through(
    browser: httpx.AsyncClient,
    instruction: PaymentInstruction,
    *,
    account_number: str,
    decline: bool = False,
) -> PayPageResult:
    """Follow the instruction to the pay page (GET a redirect, or submit the auto-post
    form as the browser would), then press Pay (or Cancel)."""
    if instruction.method.upper() == "POST":
        shown = await browser.post(instruction.url, data=dict(instruction.fields))
    else:
        shown = await browser.get(instruction.url)
    if shown.status_code != 200:
        return PayPageResult(shown.status_code, False, shown.text)
    match = _FORM_ACTION.search(shown.text)
    if match is None:
        return PayPageResult(shown.status_code, False, shown.text)
    answer = await browser.post(
        httpx.URL(str(shown.url)).join(html.unescape(match.group(1))),
        data={"account": account_number, "action": "cancel" if decline else "pay"},
    )
    return PayPageResult(answer.status_code, answer.status_code == 200 and not decline,
                         answer.text)
