"""Known-answer tests for the primitives, and the key material the tests rely on."""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gateways.protocols import (
    RsaIdentity,
    Sm2PrivateKey,
    Sm2PublicKey,
    generate_hmac_secret,
    generate_sm2_private_key,
)
from gateways.protocols.crypto import (
    constant_time_equal,
    hmac_sha256_hex,
    rsa_sha256_sign,
    rsa_sha256_verify,
)
from gateways.protocols.sm2 import CURVE_ORDER, sm2_sign, sm2_verify, sm3_hex

# GM/T 0003.5-2012 annex A: signing example on the recommended SM2 curve.
KAT_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
KAT_X = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
KAT_Y = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
KAT_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
KAT_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
KAT_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA


def test_sm3_known_answers() -> None:
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3_hex(b"abcd" * 16) == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_sm2_public_key_derivation_known_answer() -> None:
    assert Sm2PrivateKey(KAT_D).public_key == Sm2PublicKey(KAT_X, KAT_Y)


def test_sm2_signature_known_answer() -> None:
    signature = sm2_sign(Sm2PrivateKey(KAT_D), b"message digest", k=KAT_K)
    assert decode_dss_signature(signature) == (KAT_R, KAT_S)
    assert sm2_verify(Sm2PublicKey(KAT_X, KAT_Y), b"message digest", signature)
    assert not sm2_verify(Sm2PublicKey(KAT_X, KAT_Y), b"message digest!", signature)


def test_sm2_rejects_out_of_range_and_garbage_signatures() -> None:
    public = Sm2PublicKey(KAT_X, KAT_Y)
    for r, s in [(0, KAT_S), (KAT_R, 0), (CURVE_ORDER, KAT_S), (KAT_R, CURVE_ORDER + KAT_S)]:
        assert not sm2_verify(public, b"message digest", encode_dss_signature(r, s))
    assert not sm2_verify(public, b"message digest", b"\x30\x00")
    assert not sm2_verify(public, b"message digest", b"not der at all")


def test_sm2_signatures_use_fresh_nonces(bank_sm2: Sm2PrivateKey) -> None:
    first, second = sm2_sign(bank_sm2, b"x"), sm2_sign(bank_sm2, b"x")
    assert first != second
    assert sm2_verify(bank_sm2.public_key, b"x", first)
    assert sm2_verify(bank_sm2.public_key, b"x", second)


def test_sm2_keys_whose_hex_starts_with_zero_or_four_still_work() -> None:
    # gmssl's CryptSM2 lstrip("04")s the public key; such keys would silently break.
    key = Sm2PrivateKey(1)
    while key.public_key.hex[0] not in "04":
        key = Sm2PrivateKey(key.d + 1)
    signature = sm2_sign(key, b"payload")
    assert sm2_verify(key.public_key, b"payload", signature)


def test_sm2_public_key_must_be_on_the_curve() -> None:
    with pytest.raises(ValueError, match="not a point"):
        Sm2PublicKey(KAT_X, KAT_Y + 1)
    assert Sm2PublicKey.from_hex("04" + f"{KAT_X:064x}{KAT_Y:064x}") == Sm2PublicKey(KAT_X, KAT_Y)


def test_sm2_private_key_never_shows_in_repr(bank_sm2: Sm2PrivateKey) -> None:
    assert bank_sm2.hex not in repr(bank_sm2)
    assert 1 <= bank_sm2.d <= CURVE_ORDER - 2


def test_hmac_sha256_rfc4231_case_2() -> None:
    assert hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_hmac_secret_is_256_bits() -> None:
    assert len(generate_hmac_secret()) == 32
    assert generate_hmac_secret() != generate_hmac_secret()


def test_constant_time_equal() -> None:
    assert constant_time_equal("abc", b"abc")
    assert not constant_time_equal("abc", "abd")
    assert not constant_time_equal("abc", "ab")
    assert not constant_time_equal("签名", "abc")  # non-ASCII must not raise


def test_rsa_sha256_is_pkcs1v15(merchant_identity: RsaIdentity) -> None:
    signature = rsa_sha256_sign(merchant_identity.private_key, b"data")
    merchant_identity.certificate.public_key().verify(
        signature, b"data", padding.PKCS1v15(), hashes.SHA256()
    )
    public = merchant_identity.private_key.public_key()
    assert rsa_sha256_verify(public, signature, b"data")
    assert not rsa_sha256_verify(public, signature, b"Data")


def test_rsa_identity_cert_id_is_decimal_serial(
    bank_identity: RsaIdentity, unionpay_root: RsaIdentity
) -> None:
    assert bank_identity.cert_id == str(bank_identity.certificate.serial_number)
    assert bank_identity.cert_id.isdigit()
    bank_identity.certificate.verify_directly_issued_by(unionpay_root.certificate)
    assert "PRIVATE" not in repr(bank_identity)
    assert bank_identity.certificate_pem().startswith("-----BEGIN CERTIFICATE-----")
    assert bank_identity.private_key_pem().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_sm2_agrees_with_gmssl_both_ways() -> None:
    """gmssl's own (slow, hex-string) SM2 is the independent oracle for ours."""
    from gmssl import sm2 as gm

    for _ in range(3):
        key = generate_sm2_private_key()
        public = key.public_key
        engine = gm.CryptSM2(private_key=key.hex, public_key="00" * 64)
        engine.public_key = public.hex
        assert engine._kg(key.d, gm.default_ecc_table["g"]) == public.hex
        ours = sm2_sign(key, b"<Body>payload</Body>")
        r, s = decode_dss_signature(ours)
        assert engine.verify_with_sm3(f"{r:064x}{s:064x}", b"<Body>payload</Body>")
        theirs = engine.sign_with_sm3(b"<Body>payload</Body>", f"{secrets.randbelow(2**250):064x}")
        der = encode_dss_signature(int(theirs[:64], 16), int(theirs[64:], 16))
        assert sm2_verify(public, b"<Body>payload</Body>", der)
        assert not sm2_verify(public, b"<Body>payload!</Body>", der)
