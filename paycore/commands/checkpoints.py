"""Signed checkpoints of the books and one account's proof against them.

    paycore ledger keygen [--key FILE] [--keys DIR]   a new Ed25519 signing key
    paycore ledger checkpoint [--dir DIR]             sign the books as they stand now
    paycore ledger proof ACCOUNT --at CHECKPOINT      one account's leaf and Merkle path
    paycore ledger verify-proof FILE                  check such a proof offline (no database)
    paycore verify --checkpoint FILE|DIR ...          (paycore.cli) the books still extend them
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import ledger
from paycore import checkpoints
from paycore.runner import command_group, console, errors, run

if TYPE_CHECKING:  # cryptography loads with the first key read (ledger.signing)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from sqlalchemy.ext.asyncio import AsyncEngine

ledger_app = command_group("Signed checkpoints of the books, and one account's proof.")

_KEYS_HELP = "directory of trusted public keys (*.pem); default $PAYCORE_CHECKPOINT_KEYS"
_PUBLIC_KEY_HELP = "a trusted public key file (repeatable)"


def _settings() -> checkpoints.CheckpointSettings:
    return checkpoints.CheckpointSettings.from_env()


def _trusted(keys: Path | None, public_key: list[Path] | None) -> dict[str, Ed25519PublicKey]:
    # when public keys are named on their own, only they are trusted
    keys_dir = keys if keys or public_key else _settings().keys_dir
    return checkpoints.load_trusted(keys_dir, public_key or [])


def _refuse(exc: ledger.CheckpointError) -> typer.Exit:
    errors.print(f"[red]refused[/red]: {exc}")
    return typer.Exit(1)


@ledger_app.command("keygen")
def keygen(
    key: Annotated[Path | None, typer.Option(
        help="private key file; default $PAYCORE_CHECKPOINT_KEY")] = None,
    keys: Annotated[Path | None, typer.Option(help="where its public key goes; " + _KEYS_HELP)] = None,
) -> None:
    """Make a new checkpoint signing key (rotation: make one elsewhere, point
    PAYCORE_CHECKPOINT_KEY at it; keep the old public key, so old checkpoints verify)."""
    settings = _settings()
    key_file = key or settings.key_file
    if key_file is None:
        errors.print("[red]CheckpointError[/red]: give --key or set PAYCORE_CHECKPOINT_KEY")
        raise typer.Exit(2)
    try:
        key_id, public = checkpoints.generate_key(key_file, keys or settings.keys_dir)
    except ledger.CheckpointError as exc:
        errors.print(f"[red]CheckpointError[/red]: {exc}")
        raise typer.Exit(2) from None
    console.print(f"signing key {key_id}: private key {key_file} (keep it off the database "
                  f"host's backups), public key {public}")


@ledger_app.command("checkpoint")
def checkpoint(
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="default $PAYCORE_CHECKPOINT_DIR")] = None,
    no_verify: Annotated[bool, typer.Option(
        "--no-verify", help="sign without running verify() first (large books)")] = False,
) -> None:
    """Sign the books as they stand: every account's sequence number, chain head and
    balance, the entry count, one Merkle root; the file goes to the checkpoint directory
    and its hash into the ledger. Refuses books that do not prove out."""
    settings = _settings()

    async def go(engine: AsyncEngine) -> tuple[ledger.Checkpoint, Path] | ledger.VerifyReport:
        key = checkpoints.load_signing_key(settings.key_file)
        if not no_verify:
            async with engine.connect() as conn:
                report = await ledger.verify(conn)
            if not report.ok:
                return report
        return await checkpoints.take(engine, key, directory or settings.directory)

    outcome = run(go)
    if isinstance(outcome, ledger.VerifyReport):
        console.print(outcome.summary(), style="red")
        console.print("no checkpoint signed: the books do not prove out", style="red")
        raise typer.Exit(1)
    signed, path = outcome
    head = signed.head
    console.print(f"checkpoint {head.hash[:12]} of {head.taken_at.isoformat()}: "
                  f"{head.account_count} accounts, {head.entry_count} entries, root "
                  f"{head.root}, signed by key {head.key_id}")
    console.print(f"written to {path}")


@ledger_app.command("proof")
def proof(
    account: Annotated[str, typer.Argument(help="account code or id")],
    at: Annotated[str, typer.Option("--at", help="checkpoint file, or its hash's start")],
    out: Annotated[Path | None, typer.Option(help="write the proof here (default: print)")] = None,
    keys: Annotated[Path | None, typer.Option(help=_KEYS_HELP)] = None,
    public_key: Annotated[list[Path] | None, typer.Option(help=_PUBLIC_KEY_HELP)] = None,
    lane: Annotated[int | None, typer.Option(
        help="for an account split into lanes: which lane's leaf (each lane is signed on "
             "its own; the account's balance is the sum of its lanes')")] = None,
) -> None:
    """One account's proof: its leaf, its Merkle audit path and the signed root — what the
    account's holder needs to check it without seeing any other account."""
    ref: str | int = int(account) if account.isdecimal() else account
    try:
        path = checkpoints.find_checkpoint(at, _settings().directory)
        signed = checkpoints.read_checkpoint(path, _trusted(keys, public_key))
        lanes = sorted(leaf.lane for leaf in signed.leaves if ref in (leaf.code, leaf.account_id))
        lane = _one_lane(account, lanes, lane)
        made = ledger.prove(signed, ref, lane)
    except ledger.CheckpointError as exc:
        raise _refuse(exc) from None
    if out is None:
        console.print_json(made.dumps())
    else:
        out.write_text(made.dumps())
        which = (f"lane {lane} of {made.leaf.code} ({len(lanes)} lanes: the account's "
                 "balance is the sum of theirs)" if len(lanes) > 1 else made.leaf.code)
        console.print(f"proof for {which} at the {made.head.label} written to {out}")


def _one_lane(account: str, lanes: list[int], lane: int | None) -> int:
    """The lane to prove: a laned account's lane must be named (lane 0's balance alone is
    not the account's); a one-lane account's is 0."""
    if lane is None:
        if len(lanes) > 1:
            raise ledger.CheckpointError(
                f"account {account} has {len(lanes)} lanes, each signed as a leaf of its "
                f"own: prove one with --lane 0..{len(lanes) - 1} (the account's balance is "
                "the sum of its lanes' balances)")
        return 0
    if lanes and lane not in lanes:
        raise ledger.CheckpointError(
            f"account {account} has no lane {lane} in this checkpoint (its lanes: "
            f"0..{len(lanes) - 1})")
    return lane


@ledger_app.command("verify-proof")
def verify_proof(
    file: Annotated[Path, typer.Argument(exists=True, readable=True, dir_okay=False)],
    keys: Annotated[Path | None, typer.Option(help=_KEYS_HELP)] = None,
    public_key: Annotated[list[Path] | None, typer.Option(help=_PUBLIC_KEY_HELP)] = None,
    root: Annotated[str | None, typer.Option(
        help="the root the books' keeper published: the proof must be of it")] = None,
) -> None:
    """Check an account proof offline, with the public key alone (no database)."""
    try:
        checked = ledger.load_proof(file.read_bytes(), _trusted(keys, public_key),
                                    what=f"proof {file}")
    except ledger.CheckpointError as exc:
        raise _refuse(exc) from None
    head, leaf = checked.head, checked.leaf
    if root is not None and root.lower() != head.root:
        raise _refuse(ledger.CheckpointError(
            f"proof {file} is of root {head.root}, not of the published root {root}"))
    side = "debit" if leaf.balance >= 0 else "credit"
    amount = ledger.from_minor(abs(leaf.balance), leaf.currency).amount
    if leaf.lane:  # a lane of an account split into lanes: its own balance and numbering
        console.print(f"proof OK: lane {leaf.lane} of account {leaf.code} at the {head.label}: "
                      f"the lane's {side} balance {amount:,} {leaf.currency} after its posting "
                      f"#{leaf.seq - ledger.lane_start(leaf.lane)} (the account's balance is "
                      "the sum of its lanes')", style="green")
    else:
        console.print(f"proof OK: account {leaf.code} at the {head.label}: {side} balance "
                      f"{amount:,} {leaf.currency} after posting #{leaf.seq}", style="green")
    console.print(f"  in root {head.root} ({head.account_count} accounts, "
                  f"{head.entry_count} entries), signed by key {head.key_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
