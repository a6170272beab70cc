"""The register of suppliers' bank accounts: the only places supplier money may go.

- `add_account` records an account `unverified` (number encrypted, keyed hash, last four);
  the same number twice for a supplier, or a number another supplier registered, is
  refused (a shared account is how money is diverted).
- `verify_account` makes it `verified`, by an actor other than the one who typed its number
  (`number_entered_by`) and other than the one who last changed it (four eyes; the
  database's CHECK holds the same rule): a cosmetic change by someone else never lets the
  number's typist check her own number.
- `change_account` sets new details: the account is `unverified` again and its cooling-off
  starts over; a change that changes nothing is no change (nothing reset, nothing audited).
  `retire_account` takes it out of use.
- Account numbers are canonical before they are hashed or sealed (`canonical_number`: no
  spaces, letters upper-case — banks read IBANs case-insensitively), so one bank account is
  one hash however it was typed.
- `suspend_account`: a payout to the account came back (退票: closed, wrong name): it is
  `unverified` again, with the bank's reason (`status_reason`), until a second person (not
  the one who entered its details) verifies it again or its details are changed; the
  cooling-off runs from that verification. Nothing is paid to it meanwhile: the
  settlement run keeps the money on the payable and says why.
- `usable_account` is what a payout asks: verified, this supplier's, and past the cooling-off
  (`PayoutControls.cooling_off`) since it was last changed or verified.
- `rekey_accounts` re-encrypts every row under the newest key (rotation).

Every change writes a row to `payout_control_audit` (append-only; never a number) in the
same transaction. Actors are strings the caller authenticated: `user:<name>` or
`key:<api key id>`, compared in one spelling (`normalise_actor`: trimmed, lower-case), so
'user:Alice' and 'user:alice' are one person.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gateways.account_keys import AccountKeys, current_account_keys, mask
from gateways.bank import Beneficiary
from gateways.errors import InvalidPaymentRequest, NotFound, PaymentError
from gateways.schema import beneficiary_accounts, payout_control_audit
from gateways.store import utcnow

__all__ = [
    "AccountNotUsable",
    "AccountState",
    "BeneficiaryAccount",
    "BeneficiaryNotFound",
    "DuplicateAccount",
    "FourEyesViolation",
    "add_account",
    "audit",
    "audit_trail",
    "canonical_number",
    "change_account",
    "get_account",
    "list_accounts",
    "normalise_actor",
    "rekey_accounts",
    "retire_account",
    "reveal",
    "settlement_account",
    "suspend_account",
    "usable_account",
    "verify_account",
]

log = structlog.get_logger("gateways.beneficiaries")

_NUMBER = re.compile(r"^[A-Za-z0-9]{4,34}$")
_ACTOR = re.compile(r"^(user|key|system):[A-Za-z0-9._@:-]{1,100}$")


class AccountState(StrEnum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    RETIRED = "retired"


class BeneficiaryNotFound(NotFound):
    code = "beneficiary-account-not-found"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"no bank account {account_id!r} in the register")
        self.account_id = account_id


class DuplicateAccount(PaymentError):
    code = "duplicate-beneficiary-account"


class FourEyesViolation(PaymentError):
    """The same person may not both make and check."""

    code = "four-eyes"


class AccountNotUsable(PaymentError):
    """A payout may not go to this account (now): unverified, retired, cooling off, or
    another supplier's."""

    code = "beneficiary-account-not-usable"


@dataclass(frozen=True)
class BeneficiaryAccount:
    """A register row as callers see it: the number only masked."""

    id: str
    supplier_id: str
    holder_name: str
    bank_name: str
    masked_number: str
    status: AccountState
    key_id: str
    created_by: str
    created_at: dt.datetime
    changed_by: str
    changed_at: dt.datetime
    verified_by: str | None
    verified_at: dt.datetime | None
    #: why the system took it out of use (a payout to it came back); None otherwise
    status_reason: str | None = None
    #: who typed the account number now registered (on add, or on a change of the number):
    #: never its verifier
    number_entered_by: str = ""

    def usable_from(self, cooling_off: dt.timedelta) -> dt.datetime | None:
        """When payouts may start (None: not verified)."""
        if self.status is not AccountState.VERIFIED or self.verified_at is None:
            return None
        return max(self.changed_at, self.verified_at) + cooling_off


def _row(r: Any) -> BeneficiaryAccount:
    return BeneficiaryAccount(
        id=r.id, supplier_id=r.supplier_id, holder_name=r.holder_name, bank_name=r.bank_name,
        masked_number=mask("****" + r.account_last4), status=AccountState(r.status),
        key_id=r.key_id, created_by=r.created_by, created_at=r.created_at,
        changed_by=r.changed_by, changed_at=r.changed_at, verified_by=r.verified_by,
        verified_at=r.verified_at, status_reason=r.status_reason,
        number_entered_by=r.number_entered_by)


def normalise_actor(actor: str) -> str:
    """The one spelling of an identity that four-eyes checks compare and the trail records:
    trimmed, kind and name lower-case ('user:Alice ' is 'user:alice')."""
    kind, sep, name = actor.strip().partition(":")
    return f"{kind.strip().lower()}{sep}{name.strip().casefold()}"


def _check_actor(actor: str) -> str:
    """The actor in its one spelling (`normalise_actor`), if well formed."""
    normal = normalise_actor(actor)
    if not _ACTOR.match(normal):
        raise InvalidPaymentRequest(f"actor {actor!r} must read user:<name>, key:<id> or "
                                    "system:<job>")
    return normal


def canonical_number(number: str) -> str:
    """An account number as the bank reads it: no spaces, letters upper-case (an IBAN typed
    in lower case is the same account). Hashed and sealed only in this form."""
    return "".join(number.split()).upper()


def _check_details(holder_name: str, number: str, bank_name: str) -> str:
    number = canonical_number(number)
    if not _NUMBER.match(number):
        raise InvalidPaymentRequest("an account number is 4 to 34 letters and digits")
    if not holder_name.strip() or len(holder_name) > 140 or len(bank_name) > 140:
        raise InvalidPaymentRequest("the account holder's name is required (at most 140 "
                                    "characters; the bank's name at most 140)")
    return number


async def audit(conn: AsyncConnection, *, actor: str, action: str, supplier_id: str,
                subject_id: str, details: Mapping[str, Any] | None = None,
                now: dt.datetime | None = None) -> None:
    """One row of the payout-control audit trail, in the caller's transaction."""
    await conn.execute(payout_control_audit.insert().values(
        at=now or utcnow(), actor=actor, action=action, supplier_id=supplier_id,
        subject_id=subject_id, details=dict(details or {})))


async def audit_trail(conn: AsyncConnection, subject_id: str | None = None, *,
                      supplier_id: str | None = None, limit: int = 200
                      ) -> list[dict[str, Any]]:
    query = sa.select(payout_control_audit).order_by(payout_control_audit.c.id).limit(limit)
    if subject_id is not None:
        query = query.where(payout_control_audit.c.subject_id == subject_id)
    if supplier_id is not None:
        query = query.where(payout_control_audit.c.supplier_id == supplier_id)
    return [dict(r._mapping) for r in await conn.execute(query)]


#: the register's advisory locks (PostgreSQL, two-key form): (this, a number's hash)
_NUMBER_LOCKS = 1_113_939_524


async def _lock_number(conn: AsyncConnection, hashes: list[str]) -> None:
    """Serialize everyone writing one account number until their transaction ends: the
    duplicate check below reads the register, and two writers of one number in two
    processes would each read it before the other's row was committed (PostgreSQL's read
    committed), both rows standing. Locked per lookup hash in one order (no cycles); a
    transaction that writes no number takes none. SQLite's writers hold the database."""
    if conn.dialect.name != "postgresql":
        return
    for digest in sorted(set(hashes)):
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
                           {"space": _NUMBER_LOCKS,
                            "key": int.from_bytes(bytes.fromhex(digest[:8]), "big",
                                                  signed=False) - 2**31})


async def _refuse_duplicate(conn: AsyncConnection, keys: AccountKeys, supplier_id: str,
                            number: str, except_id: str | None = None) -> None:
    await _lock_number(conn, keys.lookup_hashes(number))
    rows = (await conn.execute(sa.select(
        beneficiary_accounts.c.id, beneficiary_accounts.c.supplier_id).where(
        beneficiary_accounts.c.account_hmac.in_(keys.lookup_hashes(number)),
        beneficiary_accounts.c.status != AccountState.RETIRED.value))).all()
    for row in rows:
        if row.id == except_id:
            continue
        if row.supplier_id == supplier_id:
            raise DuplicateAccount(f"supplier {supplier_id} already has this account "
                                   f"({row.id})")
        # not naming the other supplier: the caller may not be bound to it
        raise DuplicateAccount("this account number is registered to another supplier; "
                               "an account is paid for one supplier only")


def _sealed(keys: AccountKeys, account_id: str, number: str) -> dict[str, str]:
    key_id, token = keys.encrypt(number, bound_to=account_id)
    return {"key_id": key_id, "account_ciphertext": token,
            "account_hmac": keys.lookup_hash(number), "account_last4": number[-4:]}


async def add_account(conn: AsyncConnection, supplier_id: str, *, holder_name: str,
                      account_number: str, bank_name: str = "", actor: str,
                      now: dt.datetime | None = None) -> BeneficiaryAccount:
    """Register a supplier's account, `unverified`."""
    actor = _check_actor(actor)
    number = _check_details(holder_name, account_number, bank_name)
    keys = current_account_keys()
    await _refuse_duplicate(conn, keys, supplier_id, number)
    now = now or utcnow()
    account_id = "ba_" + secrets.token_hex(12)
    await conn.execute(beneficiary_accounts.insert().values(
        id=account_id, supplier_id=supplier_id, holder_name=holder_name.strip(),
        bank_name=bank_name.strip(), status=AccountState.UNVERIFIED.value, created_by=actor,
        created_at=now, changed_by=actor, changed_at=now, verified_by=None, verified_at=None,
        number_entered_by=actor, updated_at=now, **_sealed(keys, account_id, number)))
    await audit(conn, actor=actor, action="account.added", supplier_id=supplier_id,
                subject_id=account_id, now=now,
                details={"holder_name": holder_name.strip(), "bank_name": bank_name.strip(),
                         "account": mask(number)})
    log.info("beneficiary.added", account_id=account_id, supplier_id=supplier_id,
             actor=actor, account_number=mask(number))
    return await get_account(conn, account_id)


async def get_account(conn: AsyncConnection, account_id: str, *,
                      supplier_id: str | None = None) -> BeneficiaryAccount:
    """One account; with `supplier_id`, another supplier's account is not found."""
    row = (await conn.execute(sa.select(beneficiary_accounts).where(
        beneficiary_accounts.c.id == account_id))).first()
    if row is None or (supplier_id is not None and row.supplier_id != supplier_id):
        raise BeneficiaryNotFound(account_id)
    return _row(row)


async def list_accounts(conn: AsyncConnection, supplier_id: str | None = None
                        ) -> list[BeneficiaryAccount]:
    query = sa.select(beneficiary_accounts).order_by(beneficiary_accounts.c.supplier_id,
                                                     beneficiary_accounts.c.created_at,
                                                     beneficiary_accounts.c.id)
    if supplier_id is not None:
        query = query.where(beneficiary_accounts.c.supplier_id == supplier_id)
    return [_row(r) for r in await conn.execute(query)]


async def _set(conn: AsyncConnection, account: BeneficiaryAccount, expected: AccountState,
               **values: Any) -> None:
    done = await conn.execute(beneficiary_accounts.update().where(
        beneficiary_accounts.c.id == account.id,
        beneficiary_accounts.c.status == expected.value,
        beneficiary_accounts.c.changed_at == account.changed_at).values(**values))
    if done.rowcount != 1:
        raise AccountNotUsable(f"account {account.id} changed meanwhile; look again")


async def verify_account(conn: AsyncConnection, account_id: str, *, actor: str,
                         supplier_id: str | None = None,
                         now: dt.datetime | None = None) -> BeneficiaryAccount:
    """The second person confirms the account (e.g. after the supplier confirmed a test
    credit or a call-back on a known number). Not the one who typed its number, nor the one
    who last changed it."""
    actor = _check_actor(actor)
    account = await get_account(conn, account_id, supplier_id=supplier_id)
    if account.status is AccountState.VERIFIED:
        return account
    if account.status is not AccountState.UNVERIFIED:
        raise AccountNotUsable(f"account {account_id} is {account.status.value}")
    if actor == normalise_actor(account.number_entered_by):
        raise FourEyesViolation(f"{actor} entered account {account_id}'s number; someone "
                                "else must verify it")
    if actor == normalise_actor(account.changed_by):
        raise FourEyesViolation(f"{actor} last changed account {account_id}'s details; "
                                "someone else must verify it")
    now = now or utcnow()
    await _set(conn, account, AccountState.UNVERIFIED, status=AccountState.VERIFIED.value,
               verified_by=actor, verified_at=now, status_reason=None, updated_at=now)
    details = {"maker": account.changed_by, "number_entered_by": account.number_entered_by}
    if account.status_reason:
        details["was"] = account.status_reason
    await audit(conn, actor=actor, action="account.verified", supplier_id=account.supplier_id,
                subject_id=account_id, now=now, details=details)
    log.info("beneficiary.verified", account_id=account_id, actor=actor)
    return await get_account(conn, account_id)


async def change_account(conn: AsyncConnection, account_id: str, *, actor: str,
                         holder_name: str | None = None, account_number: str | None = None,
                         bank_name: str | None = None, supplier_id: str | None = None,
                         now: dt.datetime | None = None) -> BeneficiaryAccount:
    """New details: the account is unverified again and its cooling-off starts over. Details
    equal to the registered ones are no change: the account is returned as it is."""
    actor = _check_actor(actor)
    account = await get_account(conn, account_id, supplier_id=supplier_id)
    if account.status is AccountState.RETIRED:
        raise AccountNotUsable(f"account {account_id} is retired; register a new one")
    keys = current_account_keys()
    name = holder_name if holder_name is not None else account.holder_name
    bank = bank_name if bank_name is not None else account.bank_name
    values: dict[str, Any] = {}
    details: dict[str, Any] = {"holder_name": name, "bank_name": bank,
                               "previous_status": account.status.value}
    number = None
    if account_number is not None:
        number = _check_details(name, account_number, bank)
        if number == (await reveal(conn, account_id)).account_number:
            number = None  # the number registered already: not a new number
    else:
        _check_details(name, "0000", bank)
    if number is not None:
        await _refuse_duplicate(conn, keys, account.supplier_id, number, except_id=account_id)
        values.update(_sealed(keys, account_id, number), number_entered_by=actor)
        details["account"] = mask(number)
    elif (name.strip(), bank.strip()) == (account.holder_name, account.bank_name):
        # nothing changes: no reset of the verification or the cooling-off, no audit row
        return account
    now = now or utcnow()
    await _set(conn, account, account.status, holder_name=name.strip(), bank_name=bank.strip(),
               status=AccountState.UNVERIFIED.value, changed_by=actor, changed_at=now,
               verified_by=None, verified_at=None, status_reason=None, updated_at=now,
               **values)
    await audit(conn, actor=actor, action="account.changed", supplier_id=account.supplier_id,
                subject_id=account_id, now=now, details=details)
    log.info("beneficiary.changed", account_id=account_id, actor=actor)
    return await get_account(conn, account_id)


async def retire_account(conn: AsyncConnection, account_id: str, *, actor: str,
                         reason: str = "", supplier_id: str | None = None,
                         now: dt.datetime | None = None) -> BeneficiaryAccount:
    actor = _check_actor(actor)
    account = await get_account(conn, account_id, supplier_id=supplier_id)
    if account.status is AccountState.RETIRED:
        return account
    now = now or utcnow()
    await conn.execute(beneficiary_accounts.update().where(
        beneficiary_accounts.c.id == account_id).values(
        status=AccountState.RETIRED.value, updated_at=now))
    await audit(conn, actor=actor, action="account.retired", supplier_id=account.supplier_id,
                subject_id=account_id, now=now, details={"reason": reason})
    return await get_account(conn, account_id)


async def suspend_account(conn: AsyncConnection, account_id: str, *, reason: str,
                          payout_id: str, actor: str = "system:payout-return",
                          now: dt.datetime | None = None) -> BeneficiaryAccount:
    """A payout to this account came back: unverified, with `reason`, until a second person
    verifies it again (or its details are changed). An account not verified now (changed
    since, or retired) is left as it is."""
    actor = _check_actor(actor)
    account = await get_account(conn, account_id)
    if account.status is not AccountState.VERIFIED:
        return account
    now = now or utcnow()
    why = (f"suspended: payout {payout_id} to it came back ({reason}); a second person must "
           "verify it again, or its details be changed")[:500]
    await _set(conn, account, AccountState.VERIFIED, status=AccountState.UNVERIFIED.value,
               verified_by=None, verified_at=None, status_reason=why, updated_at=now)
    await audit(conn, actor=actor, action="account.suspended", supplier_id=account.supplier_id,
                subject_id=account_id, now=now,
                details={"payout_id": payout_id, "reason": reason[:500],
                         "verified_by": account.verified_by})
    log.warning("beneficiary.suspended", account_id=account_id, payout_id=payout_id,
                reason=reason)
    return await get_account(conn, account_id)


def _not_usable_reason(account: BeneficiaryAccount, cooling_off: dt.timedelta,
                       now: dt.datetime) -> str | None:
    if account.status is not AccountState.VERIFIED:
        why = f" ({account.status_reason})" if account.status_reason else ""
        return (f"account {account.id} ({account.masked_number}) is {account.status.value}"
                f"{why}: payouts go only to a verified account")
    usable = account.usable_from(cooling_off)
    if usable is not None and now < usable:
        return (f"account {account.id} ({account.masked_number}) was changed or verified "
                f"recently: it may receive payouts from {usable:%Y-%m-%d %H:%M} UTC "
                "(cooling-off)")
    return None


async def usable_account(conn: AsyncConnection, supplier_id: str, account_id: str, *,
                         cooling_off: dt.timedelta,
                         now: dt.datetime | None = None) -> BeneficiaryAccount:
    """The account if a payout for `supplier_id` may go to it now, else `AccountNotUsable`."""
    try:
        account = await get_account(conn, account_id, supplier_id=supplier_id)
    except BeneficiaryNotFound:
        raise AccountNotUsable(f"account {account_id!r} is not a registered account of "
                               f"supplier {supplier_id}") from None
    reason = _not_usable_reason(account, cooling_off, now or utcnow())
    if reason is not None:
        raise AccountNotUsable(reason)
    return account


async def settlement_account(conn: AsyncConnection, supplier_id: str, *,
                             cooling_off: dt.timedelta, now: dt.datetime | None = None
                             ) -> tuple[BeneficiaryAccount | None, str]:
    """The account a settlement pays `supplier_id` to: its longest-verified usable account;
    else (None, why not)."""
    now = now or utcnow()
    accounts = [a for a in await list_accounts(conn, supplier_id)
                if a.status is not AccountState.RETIRED]
    usable = [a for a in accounts if _not_usable_reason(a, cooling_off, now) is None]
    if usable:
        return min(usable, key=lambda a: (a.verified_at or now, a.id)), ""
    if not accounts:
        return None, "no bank account registered"
    reason = _not_usable_reason(accounts[0], cooling_off, now)
    return None, reason or "no usable bank account"


async def reveal(conn: AsyncConnection, account_id: str) -> Beneficiary:
    """The account's full details, to instruct a bank. Never log the result."""
    row = (await conn.execute(sa.select(beneficiary_accounts).where(
        beneficiary_accounts.c.id == account_id))).first()
    if row is None:
        raise BeneficiaryNotFound(account_id)
    number = current_account_keys().decrypt(row.key_id, row.account_ciphertext,
                                            bound_to=row.id)
    return Beneficiary(row.holder_name, number, row.bank_name)


async def rekey_accounts(conn: AsyncConnection, *, actor: str,
                         now: dt.datetime | None = None) -> int:
    """Re-encrypt every account not under the newest key, and re-seal any whose number was
    stored as typed rather than canonical (`canonical_number`: the duplicate check hashes
    that form); returns how many. The old keys may leave the ring afterwards."""
    actor = _check_actor(actor)
    keys = current_account_keys()
    now = now or utcnow()
    rows = []
    for row in (await conn.execute(sa.select(beneficiary_accounts))).all():
        typed = keys.decrypt(row.key_id, row.account_ciphertext, bound_to=row.id)
        number = canonical_number(typed)
        if row.key_id != keys.current_id or typed != number:
            rows.append((row, number))
    for row, number in rows:
        await conn.execute(beneficiary_accounts.update().where(
            beneficiary_accounts.c.id == row.id, beneficiary_accounts.c.key_id == row.key_id)
            .values(**_sealed(keys, row.id, number)))
        await audit(conn, actor=actor, action="account.rekeyed", supplier_id=row.supplier_id,
                    subject_id=row.id, now=now,
                    details={"from_key": row.key_id, "to_key": keys.current_id})
    if rows:
        log.info("beneficiary.rekeyed", count=len(rows), key_id=keys.current_id, actor=actor)
    return len(rows)
