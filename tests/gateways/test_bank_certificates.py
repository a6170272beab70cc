"""The bank's signing certificate must prove it is the bank's: it chains through the
configured intermediate to the configured root, is valid now, may sign, and names the
bank. A notification signed by another party's certificate under the same root, or by an
expired one, is refused and changes nothing; a certificate 20 days from its end warns in
`paycore payments health` and in the logs."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import structlog
from typer.testing import CliRunner

import gateways
from gateways import BankDirectory, IntentState
from gateways.adapters import UnionPayAdapter
from gateways.protocols import RsaIdentity, generate_rsa_identity
from gateways.protocols import unionpay as up
from gateways.sandbox.unionpay import SIGNER_NAME

from .core_env import Env, checkout_env
from .core_helpers import assert_books_prove


def _resigned(env: Env, body: bytes, signer: RsaIdentity) -> bytes:
    """The bank's genuine notification, signed again (valid signature) by `signer`."""
    fields = up.decode_form(body)
    fields.pop("signature")
    return up.encode_form(up.Signer(signer, embed_certificate=True).sign(fields)).encode()


async def _undelivered_payment(env: Env) -> tuple[gateways.Checkout, bytes, dict[str, str]]:
    await env.terms()
    co = await env.checkout("88.00", bank="unionpay")
    await env.pay(co)
    await env.fleet.drain()
    bank = env.fleet.bank("unionpay")
    delivery = next(d for d in bank.notifier.deliveries if d.reference == co.attempt.id)
    return co, delivery.body, delivery.headers


async def _refused(env: Env, co: gateways.Checkout, body: bytes,
                   headers: dict[str, str]) -> None:
    reply = await gateways.handle_notification(env.engine, env.banks, "unionpay", headers, body)
    assert reply.status_code == 503  # not accepted: a real bank sends it again, signed right
    assert (await env.intent(co.intent.id)).status is IntentState.PENDING
    assert await env.entries("payment.capture") == []


async def test_a_notification_signed_by_another_party_under_the_same_root_is_refused(db):
    async with checkout_env(db, ("unionpay",), receiver=False) as env:
        co, body, headers = await _undelivered_payment(env)
        bank = env.fleet.bank("unionpay")
        # another party the same root CA certified: a valid certificate, not the bank's
        impostor = generate_rsa_identity("Shanghai Impostor Payments Ltd.", issuer=bank.root)
        await _refused(env, co, _resigned(env, body, impostor), headers)
        assert await env.rejections() == ["forged"]
        # the genuine one is applied, once
        reply = await gateways.handle_notification(db, env.banks, "unionpay", headers, body)
        assert reply.status_code == 200
        assert (await env.intent(co.intent.id)).status is IntentState.SUCCEEDED
        await assert_books_prove(db)


async def test_the_bank_name_under_another_intermediate_or_a_ca_key_is_refused(db):
    async with checkout_env(db, ("unionpay",), receiver=False) as env:
        co, body, headers = await _undelivered_payment(env)
        bank = env.fleet.bank("unionpay")
        # the bank's very name, but certified by a CA that is not the configured chain
        rogue_ca = generate_rsa_identity("UnionPay Sandbox Intermediate CA", is_ca=True,
                                         issuer=generate_rsa_identity("Rogue Root", is_ca=True))
        named = generate_rsa_identity(SIGNER_NAME, issuer=rogue_ca)
        await _refused(env, co, _resigned(env, body, named), headers)
        # another party under the real intermediate
        sibling = generate_rsa_identity("paycore marketplace merchant", issuer=bank.intermediate)
        await _refused(env, co, _resigned(env, body, sibling), headers)
        # the intermediate CA's own key signing messages: a CA certificate, not a signer's
        await _refused(env, co, _resigned(env, body, bank.intermediate), headers)
        assert await env.rejections() == ["forged", "forged", "forged"]


async def test_an_expired_signing_certificate_is_refused(db):
    async with checkout_env(db, ("unionpay",), receiver=False) as env:
        co, body, headers = await _undelivered_payment(env)
        bank = env.fleet.bank("unionpay")
        now = dt.datetime.now(dt.UTC)
        expired = generate_rsa_identity(SIGNER_NAME, issuer=bank.intermediate,
                                        not_before=now - dt.timedelta(days=400),
                                        valid_for=dt.timedelta(days=365))
        await _refused(env, co, _resigned(env, body, expired), headers)
        not_yet = generate_rsa_identity(SIGNER_NAME, issuer=bank.intermediate,
                                        not_before=now + dt.timedelta(days=1))
        await _refused(env, co, _resigned(env, body, not_yet), headers)
        assert await env.rejections() == ["forged", "forged"]


def test_a_verifier_that_trusts_roots_must_know_the_bank_s_name(unionpay_root):
    with pytest.raises(ValueError, match="signer name"):
        up.Verifier(roots=[unionpay_root.certificate])


# ------------------------------------------------------------- expiry warnings

WARNED_DAYS = 20


async def _soon_expiring_banks(env: Env) -> BankDirectory:
    """The deployment's UnionPay credentials with our own signing certificate (the one
    the bank holds) 20 days from its end."""
    bank = env.fleet.bank("unionpay")
    ours = generate_rsa_identity("paycore marketplace merchant",
                                 valid_for=dt.timedelta(days=WARNED_DAYS, hours=1))
    credentials = dataclasses.replace(bank.credentials(), merchant_identity=ours)
    return BankDirectory([UnionPayAdapter(credentials, code="unionpay")])


async def test_a_certificate_20_days_from_its_end_warns_in_the_logs_and_is_saved(db):
    async with checkout_env(db, ("unionpay",)) as env:
        banks = await _soon_expiring_banks(env)
        with structlog.testing.capture_logs() as logs:
            async with db.begin() as conn:
                await gateways.save_bank_health(conn, banks)
        [warning] = [e for e in logs if e["event"] == "certificate.expiring"]
        assert warning["role"] == "merchant signing" and warning["days_left"] == WARNED_DAYS
        assert warning["log_level"] == "warning"
        async with db.connect() as conn:
            saved = await gateways.load_bank_certificates(conn)
        now = dt.datetime.now(dt.UTC)
        states = {c.role: c.state(now) for c in saved}
        assert states == {"merchant signing": gateways.CertificateState.EXPIRING,
                          "bank root": gateways.CertificateState.VALID,
                          "bank intermediate": gateways.CertificateState.VALID,
                          "bank encryption": gateways.CertificateState.VALID}
        # saving again replaces, never duplicates
        async with db.begin() as conn:
            await gateways.save_bank_health(conn, banks)
            assert len(await gateways.load_bank_certificates(conn)) == 4
        await banks.get("unionpay").aclose()  # type: ignore[attr-defined]


def test_payments_health_warns_20_days_ahead(tmp_path, monkeypatch):
    import asyncio

    from paycore.cli import app
    from paycore.db import create_engine

    monkeypatch.setattr("paycore.logging.configure_logging", lambda *args, **kwargs: None)
    url = f"sqlite+aiosqlite:///{tmp_path}/health.sqlite"
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0

    async def a_worker_saves_bank_health() -> None:
        engine = create_engine(url)
        try:
            async with checkout_env(engine, ("unionpay",)) as env:
                banks = await _soon_expiring_banks(env)
                async with engine.begin() as conn:
                    await gateways.save_bank_health(conn, banks)
                await banks.get("unionpay").aclose()  # type: ignore[attr-defined]
        finally:
            await engine.dispose()

    asyncio.run(a_worker_saves_bank_health())
    shown = runner.invoke(app, ["payments", "health"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "unionpay merchant signing certificate" in shown.output
    assert f"expires in {WARNED_DAYS} days" in shown.output
    assert shown.output.count("WARNING") == 1
