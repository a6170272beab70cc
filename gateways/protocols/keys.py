"""Real test key material, generated at run time, for the tests and the sandbox banks.

Nothing here is a stand-in: an identity signs and verifies with real RSA-2048, HMAC and
SM2 keys, so a test that forges a message fails for the same reason production would.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateways.protocols.sm2 import CURVE_ORDER, Sm2PrivateKey

__all__ = [
    "RsaIdentity",
    "generate_api_key",
    "generate_hmac_secret",
    "generate_rsa_identity",
    "generate_sm2_private_key",
]


@dataclass(frozen=True, repr=False)
class RsaIdentity:
    """A private key with its X.509 certificate: a merchant's or a bank's signing identity."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def __repr__(self) -> str:
        return f"RsaIdentity(cert_id={self.cert_id!r})"

    @property
    def cert_id(self) -> str:
        """The certificate serial number in decimal, which UnionPay calls `certId`."""
        return str(self.certificate.serial_number)

    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def generate_rsa_identity(
    common_name: str,
    *,
    issuer: RsaIdentity | None = None,
    serial_number: int | None = None,
    is_ca: bool = False,
    path_length: int | None = None,
    not_before: dt.datetime | None = None,
    valid_for: dt.timedelta = dt.timedelta(days=365),
) -> RsaIdentity:
    """RSA-2048 key and certificate; self-signed unless an issuer (a test CA) is given.
    `path_length` limits how many CAs may stand below a CA (0: it issues end entities only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paycore test"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    signer_key = issuer.private_key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        # UnionPay serials are long decimals; a random 64-bit positive serial is realistic.
        .serial_number(serial_number or secrets.randbits(63) + 1)
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None),
                       critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=not is_ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    certificate = builder.sign(signer_key, hashes.SHA256())
    return RsaIdentity(private_key=key, certificate=certificate)


def generate_hmac_secret() -> bytes:
    """32 random bytes: the full strength of HMAC-SHA256."""
    return secrets.token_bytes(32)


def generate_api_key(prefix: str = "pk_test_") -> str:
    return prefix + secrets.token_hex(12)


def generate_sm2_private_key() -> Sm2PrivateKey:
    """A uniformly random d in [1, n-2]; the public point is d*G on gmssl's curve arithmetic.

    gmssl 3.2 has no key generation of its own, hence the explicit draw.
    """
    return Sm2PrivateKey(secrets.randbelow(CURVE_ORDER - 2) + 1)
