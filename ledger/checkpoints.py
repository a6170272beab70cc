"""Signed checkpoints: a statement of the books at one moment that lives outside them.

`verify()` proves the books agree with themselves; an insider who switches the triggers
off, deletes the newest entry and winds `account_balances` back leaves books that still
do. A checkpoint holds what such a cut would change — every account's sequence number,
chain head and posted balance, and the number of entries — signed with an Ed25519 key the
database never sees. Because each posting's hash covers the one before it, finding the
posting at the signed sequence number with the signed hash proves the account's history
up to it unchanged (given that `verify()` walks the chains without a fault).

The accounts are the leaves of a Merkle tree (`ledger.merkle`); the signature covers the
head (time, counts, root, key id), so one account's holder can be shown their leaf, its
audit path and the signed head, and check them with the public key alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import chain, merkle
from ledger.entries import utcnow
from ledger.errors import CheckpointError, LedgerError
from ledger.schema import (
    LANE_STRIDE,
    account_balances,
    accounts,
    journal_entries,
    ledger_checkpoints,
    postings,
)
from ledger.signing import SigningKey, check_signature

if TYPE_CHECKING:  # `cryptography` is imported by ledger.signing when a key is used
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHECKPOINT_FORMAT = "paycore.checkpoint/1"
PROOF_FORMAT = "paycore.account-proof/1"
#: accounts looked up per statement when a checkpoint is held against the books
_CHUNK = 500


def _canonical(value: Any) -> bytes:
    return chain.canonical_json(value).encode()


@dataclass(frozen=True)
class AccountLeaf:
    """One account's lane as a checkpoint signs it (an account of one lane: the account).
    An account split into lanes has a leaf per lane, each its own chain."""

    account_id: int
    code: str
    currency: str
    #: the sequence number of the lane's last posting (its base, lane * 2**40, when none)
    seq: int
    #: that posting's chain hash (chain.GENESIS when there is none)
    head: str
    #: the lane's posted debits minus credits after that posting, in minor units
    balance: int
    lane: int = 0

    def to_json(self) -> dict[str, Any]:
        doc = {"account_id": self.account_id, "code": self.code, "currency": self.currency,
               "seq": self.seq, "head": self.head, "balance": self.balance}
        if self.lane:  # (lane 0's leaf is what every account's was before lanes)
            doc["lane"] = self.lane
        return doc

    @property
    def hash(self) -> bytes:
        if self.lane:
            return merkle.leaf_hash(_canonical(["account-lane/1", self.account_id, self.code,
                                                self.currency, self.lane, self.seq, self.head,
                                                self.balance]))
        return merkle.leaf_hash(_canonical(["account/1", self.account_id, self.code,
                                            self.currency, self.seq, self.head, self.balance]))


@dataclass(frozen=True)
class CheckpointHead:
    """What the key signs: the moment, the counts and the root over the account leaves."""

    taken_at: dt.datetime
    entry_count: int
    account_count: int
    root: str
    key_id: str

    def to_json(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "taken_at": chain.booked_text(self.taken_at),
                "entry_count": self.entry_count, "account_count": self.account_count,
                "root": self.root, "key_id": self.key_id}

    def signed_bytes(self) -> bytes:
        return _canonical(self.to_json())

    @property
    def hash(self) -> str:
        """The checkpoint's name: SHA-256 of the signed statement, kept in the ledger."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    @property
    def label(self) -> str:
        return f"checkpoint of {chain.booked_text(self.taken_at)} ({self.hash[:12]})"


@dataclass(frozen=True)
class Checkpoint:
    head: CheckpointHead
    signature: str
    #: in account id order
    leaves: tuple[AccountLeaf, ...]

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint": self.head.to_json(), "signature": self.signature,
                "accounts": [leaf.to_json() for leaf in self.leaves]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class AccountProof:
    """What one account's holder needs to check their leaf against a signed root."""

    head: CheckpointHead
    signature: str
    leaf: AccountLeaf
    index: int
    #: sibling hashes, leaf first (RFC 6962 audit path), hex
    path: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"format": PROOF_FORMAT, "checkpoint": self.head.to_json(),
                "signature": self.signature, "account": self.leaf.to_json(),
                "index": self.index, "path": list(self.path)}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"


# -- taking one ---------------------------------------------------------------------------


async def take_checkpoint(conn: AsyncConnection, key: SigningKey) -> Checkpoint:
    """Sign the books as they stand and record the checkpoint's hash in the ledger.

    The accounts, their heads and the entry count are read in one statement, so on
    PostgreSQL they are one snapshot at any isolation level (on SQLite the transaction
    holds the write lock). Each account's head must be its last posting's hash: a balance
    row out of step with its postings is refused, not signed (run `verify()` first for the
    whole proof; this check is one index look-up per account)."""
    count_entries = sa.select(sa.func.count()).select_from(journal_entries)
    entry_count = count_entries.scalar_subquery()
    rows = (await conn.execute(
        sa.select(accounts.c.id, accounts.c.code, accounts.c.currency, account_balances.c.lane,
                  account_balances.c.seq,
                  account_balances.c.head_hash,
                  (account_balances.c.posted_debits - account_balances.c.posted_credits)
                  .label("net"),
                  postings.c.hash.label("posting_hash"), postings.c.balance_after,
                  entry_count.label("entries"))
        .join(account_balances, account_balances.c.account_id == accounts.c.id)
        .outerjoin(postings, sa.and_(postings.c.account_id == accounts.c.id,
                                     postings.c.account_seq == account_balances.c.seq))
        .order_by(accounts.c.id, account_balances.c.lane)
    )).all()
    entries = rows[0].entries if rows else await conn.scalar(count_entries)
    leaves = []
    for r in rows:
        if r.seq == r.lane * LANE_STRIDE:
            sound = r.head_hash == chain.GENESIS and r.net == 0
        else:
            sound = r.posting_hash == r.head_hash and r.balance_after == r.net
        if not sound:
            raise LedgerError(f"account {r.code!r}: its balance row (#{r.seq}, head "
                              f"{r.head_hash[:12]}) is not its last posting; no checkpoint is "
                              "signed over books that do not prove out — run verify()")
        leaves.append(AccountLeaf(r.id, r.code, r.currency, r.seq, r.head_hash, r.net, r.lane))
    head = CheckpointHead(utcnow(), int(entries or 0), len(leaves),
                          merkle.root([leaf.hash for leaf in leaves]).hex(), key.key_id)
    checkpoint = Checkpoint(head, key.sign(head.signed_bytes()), tuple(leaves))
    await conn.execute(ledger_checkpoints.insert().values(
        hash=head.hash, taken_at=head.taken_at, key_id=head.key_id, root=head.root,
        entry_count=head.entry_count, account_count=head.account_count))
    return checkpoint


# -- reading one back ----------------------------------------------------------------------


def _get(doc: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = doc.get(name) if isinstance(doc, Mapping) else None
    # bool is an int in Python; a count or sequence number must not be one
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CheckpointError(f"{where}: {name!r} is missing or not a {kind.__name__}")
    return value


def _head(doc: Any, where: str) -> CheckpointHead:
    if _get(doc, "format", str, where) != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{where}: not a {CHECKPOINT_FORMAT} statement")
    try:
        taken_at = dt.datetime.fromisoformat(_get(doc, "taken_at", str, where))
    except ValueError:
        raise CheckpointError(f"{where}: 'taken_at' is not a timestamp") from None
    if taken_at.tzinfo is None:
        raise CheckpointError(f"{where}: 'taken_at' has no time zone")
    return CheckpointHead(taken_at, _get(doc, "entry_count", int, where),
                          _get(doc, "account_count", int, where), _get(doc, "root", str, where),
                          _get(doc, "key_id", str, where))


def _leaf(doc: Any, where: str) -> AccountLeaf:
    lane = _get(doc, "lane", int, where) if isinstance(doc, Mapping) and "lane" in doc else 0
    if lane < 0:
        raise CheckpointError(f"{where}: 'lane' is negative")
    return AccountLeaf(_get(doc, "account_id", int, where), _get(doc, "code", str, where),
                       _get(doc, "currency", str, where), _get(doc, "seq", int, where),
                       _get(doc, "head", str, where), _get(doc, "balance", int, where), lane)


def _parse(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{what} is not JSON") from None


def load_checkpoint(text: str | bytes, trusted: Mapping[str, Ed25519PublicKey],
                    what: str = "checkpoint") -> Checkpoint:
    """A checkpoint file, its signature checked against the trusted public keys and its
    account leaves against the signed root; CheckpointError names what is wrong."""
    doc = _parse(text, what)
    head = _head(doc.get("checkpoint") if isinstance(doc, dict) else None, what)
    signature = _get(doc, "signature", str, what)
    check_signature(trusted, head.key_id, head.signed_bytes(), signature, what)
    raw = doc.get("accounts")
    if not isinstance(raw, list):
        raise CheckpointError(f"{what}: 'accounts' is missing")
    leaves = tuple(_leaf(item, f"{what}, account {n + 1}") for n, item in enumerate(raw))
    if len(leaves) != head.account_count or \
            merkle.root([leaf.hash for leaf in leaves]).hex() != head.root:
        raise CheckpointError(f"{what}: its accounts do not add up to the signed root — the "
                              "list was altered after it was signed")
    if any((a.account_id, a.lane) >= (b.account_id, b.lane)
           for a, b in itertools.pairwise(leaves)):
        raise CheckpointError(f"{what}: its accounts are not in account id (and lane) order")
    return Checkpoint(head, signature, leaves)


# -- holding one against the books ---------------------------------------------------------


async def checkpoint_discrepancies(conn: AsyncConnection, checkpoint: Checkpoint) -> list[str]:
    """Where the books no longer extend `checkpoint`: an account whose posting at the signed
    sequence number is gone (cut or rewound) or hashes differently (rewritten), an account
    gone, fewer entries than were signed, the checkpoint missing from the ledger's log.
    Only with `verify()`'s chain walk does a matching head prove the history before it."""
    head = checkpoint.head
    found: list[str] = []
    entries = int(await conn.scalar(sa.select(sa.func.count()).select_from(journal_entries)) or 0)
    if entries < head.entry_count:
        found.append(f"{head.label}: it signed {head.entry_count} journal entries, the books "
                     f"hold {entries} — entries were deleted")
    if await conn.scalar(sa.select(ledger_checkpoints.c.hash)
                         .where(ledger_checkpoints.c.hash == head.hash)) is None:
        found.append(f"{head.label}: not in the ledger's checkpoint log — its record was "
                     "deleted, or the checkpoint is of other books")
    for start in range(0, len(checkpoint.leaves), _CHUNK):
        chunk = checkpoint.leaves[start:start + _CHUNK]
        present = {r.id: r for r in await conn.execute(
            sa.select(accounts.c.id, accounts.c.code, accounts.c.currency)
            .where(accounts.c.id.in_([leaf.account_id for leaf in chunk])))}
        pairs = [(leaf.account_id, leaf.seq) for leaf in chunk
                 if leaf.seq != leaf.lane * LANE_STRIDE]
        heads = {(r.account_id, r.account_seq): r.hash for r in await conn.execute(
            sa.select(postings.c.account_id, postings.c.account_seq, postings.c.hash)
            .where(sa.tuple_(postings.c.account_id, postings.c.account_seq).in_(pairs)))
        } if pairs else {}
        for leaf in chunk:
            account = present.get(leaf.account_id)
            if account is None or (account.code, account.currency) != (leaf.code, leaf.currency):
                found.append(f"account {leaf.code!r} (id {leaf.account_id}, {leaf.currency}), "
                             f"signed in the {head.label}: gone or renamed")
                continue
            if leaf.seq == leaf.lane * LANE_STRIDE:
                continue
            lane = f" lane {leaf.lane}" if leaf.lane else ""
            where = f"account {leaf.code!r}{lane} posting #{leaf.seq}, signed in the {head.label}"
            now = heads.get((leaf.account_id, leaf.seq))
            if now is None:
                found.append(f"{where}: gone — the account's history was cut or rewound "
                             "behind the checkpoint")
            elif now != leaf.head:
                found.append(f"{where}: its chain hash is no longer the signed head — the "
                             "history up to it was rewritten")
    return found


async def last_recorded_checkpoint(conn: AsyncConnection) -> sa.Row[Any] | None:
    """The ledger's record of the checkpoint that counted the most entries."""
    return (await conn.execute(
        sa.select(ledger_checkpoints).order_by(ledger_checkpoints.c.entry_count.desc(),
                                               ledger_checkpoints.c.taken_at.desc()).limit(1)
    )).first()


# -- one account's proof --------------------------------------------------------------------


def prove(checkpoint: Checkpoint, account: str | int, lane: int = 0) -> AccountProof:
    """One account's leaf (of `lane`, for an account split into lanes), its audit path and
    the signed head: enough to check that account against the root without seeing any
    other account."""
    for index, leaf in enumerate(checkpoint.leaves):
        if account in (leaf.code, leaf.account_id) and leaf.lane == lane:
            path = merkle.audit_path(index, [x.hash for x in checkpoint.leaves])
            return AccountProof(checkpoint.head, checkpoint.signature, leaf, index,
                                tuple(h.hex() for h in path))
    raise CheckpointError(f"account {account!r} is not in the {checkpoint.head.label}")


def load_proof(text: str | bytes, trusted: Mapping[str, Ed25519PublicKey],
               what: str = "account proof") -> AccountProof:
    """An account proof checked offline: the head's signature against the trusted keys, the
    account's leaf and audit path against the signed root."""
    doc = _parse(text, what)
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise CheckpointError(f"{what}: not a {PROOF_FORMAT} document")
    head = _head(doc.get("checkpoint"), what)
    signature = _get(doc, "signature", str, what)
    check_signature(trusted, head.key_id, head.signed_bytes(), signature, what)
    leaf = _leaf(doc.get("account"), what)
    index = _get(doc, "index", int, what)
    raw_path = _get(doc, "path", list, what)
    try:
        path = [bytes.fromhex(h) for h in raw_path]
    except (TypeError, ValueError):
        raise CheckpointError(f"{what}: its path is not a list of hex hashes") from None
    reached = merkle.root_from_path(index, head.account_count, leaf.hash, path)
    if reached is None or reached.hex() != head.root:
        raise CheckpointError(f"{what}: account {leaf.code!r} and its audit path do not lead "
                              "to the signed root — the proof was altered, or is not of this "
                              "checkpoint")
    return AccountProof(head, signature, leaf, index, tuple(raw_path))


__all__ = [
    "AccountLeaf",
    "AccountProof",
    "Checkpoint",
    "CheckpointHead",
    "checkpoint_discrepancies",
    "last_recorded_checkpoint",
    "load_checkpoint",
    "load_proof",
    "prove",
    "take_checkpoint",
]
