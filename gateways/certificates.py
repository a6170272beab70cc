"""The certificates the banks' protocols depend on, and their expiry.

Each adapter that works with X.509 certificates lists them by role (`certificates()`:
our signing certificate the bank holds, the bank's root and intermediates, its encryption
certificate, its signing certificate as last verified). An expired one stops payments
cold — the bank refuses our signatures, or we refuse the bank's — so the workers save
them with bank health and `paycore payments health` warns `WARN_BEFORE` (30 days) ahead,
computed when it is shown; the logs warn each time the workers save them.
(The SM bank pins raw SM2 public keys by key id, with no certificate: nothing expires.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
import structlog
from cryptography import x509
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.routing import BankDirectory
from gateways.schema import bank_certificates
from gateways.store import utcnow

__all__ = [
    "WARN_BEFORE",
    "CertificateState",
    "CertificateStatus",
    "bank_certificate_statuses",
    "check_certificates",
    "load_bank_certificates",
    "save_bank_certificates",
]

log = structlog.get_logger("gateways.certificates")

#: how long before a certificate's end it is reported as expiring
WARN_BEFORE = dt.timedelta(days=30)


class CertificateState(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


@dataclass(frozen=True)
class CertificateStatus:
    bank: str
    role: str
    subject: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime

    def state(self, now: dt.datetime, warn_before: dt.timedelta = WARN_BEFORE
              ) -> CertificateState:
        if now > self.not_after:
            return CertificateState.EXPIRED
        if now < self.not_before:
            return CertificateState.NOT_YET_VALID
        if self.not_after - now <= warn_before:
            return CertificateState.EXPIRING
        return CertificateState.VALID

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now).days

    def warning(self, now: dt.datetime, warn_before: dt.timedelta = WARN_BEFORE) -> str | None:
        """A sentence for an operator, or None while the certificate is fine."""
        state = self.state(now, warn_before)
        what = f"{self.bank} {self.role} certificate ({self.subject}, serial {self.serial})"
        if state is CertificateState.EXPIRING:
            return (f"{what} expires in {self.days_left(now)} days, on "
                    f"{self.not_after:%Y-%m-%d %H:%M} UTC: renew it and give the bank the new one")
        if state is CertificateState.EXPIRED:
            return f"{what} EXPIRED on {self.not_after:%Y-%m-%d %H:%M} UTC"
        if state is CertificateState.NOT_YET_VALID:
            return f"{what} is not valid before {self.not_before:%Y-%m-%d %H:%M} UTC"
        return None


def _status(bank: str, role: str, cert: x509.Certificate) -> CertificateStatus:
    return CertificateStatus(bank, role, cert.subject.rfc4514_string()[:1000],
                             str(cert.serial_number), cert.not_valid_before_utc,
                             cert.not_valid_after_utc)


def bank_certificate_statuses(banks: BankDirectory) -> list[CertificateStatus]:
    """Every certificate the configured adapters depend on (adapters without any, none)."""
    found = []
    for code in banks.codes:
        listing = getattr(banks.get(code), "certificates", None)
        if listing is None:
            continue
        seen: dict[str, int] = {}
        for role, cert in listing():
            seen[role] = seen.get(role, 0) + 1
            found.append(_status(code, role if seen[role] == 1 else f"{role} {seen[role]}", cert))
    return found


def check_certificates(statuses: list[CertificateStatus], *, now: dt.datetime | None = None,
                       warn_before: dt.timedelta = WARN_BEFORE) -> list[str]:
    """Log a warning for each certificate expiring (or expired); returns the warnings."""
    now = now or utcnow()
    warnings = []
    for s in statuses:
        message = s.warning(now, warn_before)
        if message is None:
            continue
        warnings.append(message)
        event = ("certificate.expired" if s.state(now, warn_before) is CertificateState.EXPIRED
                 else "certificate.expiring")
        log.warning(event, bank=s.bank, role=s.role, subject=s.subject, serial=s.serial,
                    not_after=s.not_after.isoformat(), days_left=s.days_left(now),
                    message=message)
    return warnings


async def save_bank_certificates(conn: AsyncConnection, banks: BankDirectory, *,
                                 now: dt.datetime | None = None) -> list[CertificateStatus]:
    """Replace each configured bank's saved certificates with what its adapter has now;
    warns (logs) about those near their end."""
    now = now or utcnow()
    statuses = bank_certificate_statuses(banks)
    check_certificates(statuses, now=now)
    # an upsert per certificate, then the bank's other roles removed: several processes
    # saving at once (workers' janitor jobs) each leave the same rows, where a delete and
    # re-insert would collide on the key
    insert = (postgresql.insert(bank_certificates) if conn.dialect.name == "postgresql"
              else sqlite.insert(bank_certificates))
    c = bank_certificates.c
    for s in statuses:
        values = {"subject": s.subject, "serial": s.serial[:64], "not_before": s.not_before,
                  "not_after": s.not_after, "updated_at": now}
        await conn.execute(insert.values(bank=s.bank, role=s.role[:40], **values)
                           .on_conflict_do_update(index_elements=["bank", "role"], set_=values))
    for code in {s.bank for s in statuses}:
        roles = [s.role[:40] for s in statuses if s.bank == code]
        await conn.execute(bank_certificates.delete().where(c.bank == code,
                                                            c.role.not_in(roles)))
    return statuses


async def load_bank_certificates(conn: AsyncConnection) -> list[CertificateStatus]:
    rows = await conn.execute(sa.select(bank_certificates).order_by(
        bank_certificates.c.not_after, bank_certificates.c.bank, bank_certificates.c.role))
    return [CertificateStatus(r.bank, r.role, r.subject, r.serial, r.not_before, r.not_after)
            for r in rows]
