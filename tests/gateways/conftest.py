"""Real key material, generated once per test session (RSA-2048 keygen is the slow part)."""

from __future__ import annotations

import pytest

from gateways.protocols import (
    RsaIdentity,
    Sm2PrivateKey,
    generate_rsa_identity,
    generate_sm2_private_key,
)


@pytest.fixture(scope="session")
def unionpay_root() -> RsaIdentity:
    return generate_rsa_identity("UnionPay Test Root CA", is_ca=True)


@pytest.fixture(scope="session")
def bank_identity(unionpay_root: RsaIdentity) -> RsaIdentity:
    return generate_rsa_identity("China UnionPay test signing", issuer=unionpay_root)


@pytest.fixture(scope="session")
def merchant_identity() -> RsaIdentity:
    return generate_rsa_identity("merchant 777290058110048")


@pytest.fixture(scope="session")
def forger_identity() -> RsaIdentity:
    return generate_rsa_identity("not UnionPay")


@pytest.fixture(scope="session")
def bank_sm2() -> Sm2PrivateKey:
    return generate_sm2_private_key()


@pytest.fixture(scope="session")
def forger_sm2() -> Sm2PrivateKey:
    return generate_sm2_private_key()
