from __future__ import annotations

from paycore.logging import redact
from paycore.settings import normalise_database_url


def test_secrets_vanish_and_account_numbers_keep_four_characters():
    event = {"event": "x", "api_key": "sk_live_123", "bank_account": "6222020200112233",
             "iban": "DE89370400440532013000", "amount": "10.00"}
    out = redact(None, "info", dict(event))
    assert out["api_key"] == "***"
    assert out["bank_account"] == "***2233"
    assert out["iban"] == "***3000"
    assert out["amount"] == "10.00"


def test_plain_database_urls_get_the_async_drivers():
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalise_database_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
