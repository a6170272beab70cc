"""Checkpoints as files: where the signing key, the checkpoints and the trusted public keys
live, all outside the database (which `ledger.checkpoints` never reads or writes files).

    PAYCORE_CHECKPOINT_KEY   the Ed25519 private key (PEM) that signs checkpoints
    PAYCORE_CHECKPOINT_DIR   where checkpoints are written (default ./checkpoints)
    PAYCORE_CHECKPOINT_KEYS  the trusted public keys (*.pem) checkpoints are verified
                             against (default $PAYCORE_CHECKPOINT_DIR/keys)

A verifier who does not trust the machine that writes the books keeps their own copy of
the public keys and checkpoints and points `--keys` / `--public-key` at it. After a key
rotation the old public key stays among the trusted ones: the checkpoints it signed stay
verifiable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ledger

if TYPE_CHECKING:  # cryptography loads with the first key read (ledger.signing)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from rich.console import Console
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

DEFAULT_DIRECTORY = Path("checkpoints")


@dataclass(frozen=True)
class CheckpointSettings:
    key_file: Path | None
    directory: Path
    keys_dir: Path

    @classmethod
    def from_env(cls) -> CheckpointSettings:
        key = os.environ.get("PAYCORE_CHECKPOINT_KEY")
        directory = Path(os.environ.get("PAYCORE_CHECKPOINT_DIR") or DEFAULT_DIRECTORY)
        keys = os.environ.get("PAYCORE_CHECKPOINT_KEYS")
        return cls(Path(key) if key else None, directory, Path(keys) if keys else directory / "keys")


def generate_key(key_file: Path, keys_dir: Path) -> tuple[str, Path]:
    """A new signing key: the private key to `key_file` (owner-only, never overwritten),
    its public key to `keys_dir/<key id>.pem`. Returns (key id, public key file)."""
    key = ledger.SigningKey.generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ledger.CheckpointError(f"{key_file} exists; a signing key is never overwritten "
                                     "(rotate by writing the new key elsewhere)") from None
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_pem())
    keys_dir.mkdir(parents=True, exist_ok=True)
    public = keys_dir / f"{key.key_id}.pem"
    public.write_bytes(key.public_pem())
    return key.key_id, public


def load_signing_key(key_file: Path | None) -> ledger.SigningKey:
    if key_file is None:
        raise ledger.CheckpointError("no checkpoint signing key: set PAYCORE_CHECKPOINT_KEY "
                                     "(create one with `paycore ledger keygen`)")
    try:
        mode = key_file.stat().st_mode
        pem = key_file.read_bytes()
    except OSError as exc:
        raise ledger.CheckpointError(f"cannot read the checkpoint signing key {key_file}: "
                                     f"{exc.strerror}") from None
    if mode & 0o077:
        # as ssh does: a key others can read may already sign for someone else
        raise ledger.CheckpointError(f"the checkpoint signing key {key_file} is open to other "
                                     f"users (mode {mode & 0o777:o}); chmod 600 it")
    return ledger.SigningKey.from_pem(pem)


def load_trusted(keys_dir: Path | None, files: Sequence[Path] = ()) -> dict[str, Ed25519PublicKey]:
    """The trusted public keys: every *.pem in `keys_dir` and each file given."""
    paths = list(files)
    if keys_dir is not None and keys_dir.is_dir():
        paths += sorted(keys_dir.glob("*.pem"))
    keys = []
    for path in paths:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ledger.CheckpointError(f"cannot read public key {path}: {exc.strerror}") from None
        keys.append(ledger.public_key_from_pem(pem, str(path)))
    if not keys:
        raise ledger.CheckpointError(f"no trusted public keys in {keys_dir} and none given: a "
                                     "checkpoint is only as good as the key it is checked with")
    return ledger.trusted_keys(keys)


def file_name(checkpoint: ledger.Checkpoint) -> str:
    return (f"checkpoint-{checkpoint.head.taken_at:%Y%m%dT%H%M%S%fZ}-"
            f"{checkpoint.head.hash[:12]}.json")


def write_checkpoint(checkpoint: ledger.Checkpoint, directory: Path) -> Path:
    """The checkpoint's file in `directory`, written whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name(checkpoint)
    part = path.with_suffix(".part")
    part.write_text(checkpoint.dumps())
    part.replace(path)
    return path


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def take(engine: AsyncEngine, key: ledger.SigningKey,
               directory: Path) -> tuple[ledger.Checkpoint, Path]:
    """Sign the books, write the checkpoint file, then commit its record: a checkpoint the
    ledger records always has its file (a failed commit removes the file again)."""
    path: Path | None = None
    try:
        async with engine.begin() as conn:
            checkpoint = await ledger.take_checkpoint(conn, key)
            path = write_checkpoint(checkpoint, directory)
    except BaseException:
        if path is not None:
            _remove(path)
        raise
    return checkpoint, path


def checkpoint_files(given: Sequence[Path]) -> list[Path]:
    """Each file given, and every checkpoint-*.json in each directory given."""
    out: list[Path] = []
    for path in given:
        out += sorted(path.glob("checkpoint-*.json")) if path.is_dir() else [path]
    return out


def find_checkpoint(ref: str, directory: Path) -> Path:
    """A checkpoint file by path, or by the start of its hash in `directory`."""
    path = Path(ref)
    if path.is_file():
        return path
    found = sorted(directory.glob(f"checkpoint-*-{ref}*.json")) if ref.isalnum() else []
    if len(found) == 1:
        return found[0]
    raise ledger.CheckpointError(
        f"no checkpoint {ref!r}: not a file, and {len(found)} checkpoints in {directory} have "
        "a hash starting so" if found else
        f"no checkpoint {ref!r}: not a file, nor a checkpoint hash in {directory}")


def read_checkpoint(path: Path, trusted: Mapping[str, Ed25519PublicKey]) -> ledger.Checkpoint:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ledger.CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    return ledger.load_checkpoint(text, trusted, what=f"checkpoint {path}")


async def verify(conn: AsyncConnection, files: Sequence[Path],
                 trusted: Mapping[str, Ed25519PublicKey]) -> ledger.VerifyReport:
    """`ledger.verify()` held against every checkpoint file; a file that cannot be trusted
    (bad signature, unknown key, altered) is itself a discrepancy, named first."""
    paths = checkpoint_files(files)
    if files and not paths:
        raise ledger.CheckpointError(f"no checkpoint files in {', '.join(map(str, files))}")
    refused: list[str] = []
    loaded = []
    for path in paths:
        try:
            loaded.append(read_checkpoint(path, trusted))
        except ledger.CheckpointError as exc:
            refused.append(f"refused: {exc}")
    report = await ledger.verify(conn, checkpoints=loaded)
    return dataclasses.replace(report, discrepancies=(*refused, *report.discrepancies))


async def demo_proof(engine: AsyncEngine, console: Console) -> ledger.VerifyReport:
    """The demo's final proof: a new key signs a checkpoint of the books, then `verify
    --checkpoint` holds the books against it. The key and the checkpoint go beside the
    demo's database file (made anew each run), so they can be checked again by hand."""
    database = engine.url.database
    place = Path(f"{database}.checkpoints") if database and database != ":memory:" else None
    with contextlib.ExitStack() as stack:
        if place is None:
            place = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paycore-demo-")))
        else:
            shutil.rmtree(place, ignore_errors=True)
        key_id, _ = generate_key(place / "signing-key.pem", place / "keys")
        signed, path = await take(engine, load_signing_key(place / "signing-key.pem"), place)
        head = signed.head
        console.print(f"checkpoint {head.hash[:12]}: {head.account_count} accounts, "
                      f"{head.entry_count} entries, root {head.root[:16]}…, signed by key "
                      f"{key_id} (private key outside the database)")
        console.print(f"$ paycore verify --checkpoint {path} --keys {place / 'keys'}")
        async with engine.connect() as conn:
            return await verify(conn, [path], load_trusted(place / "keys"))
