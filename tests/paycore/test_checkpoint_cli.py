"""`paycore ledger keygen|checkpoint|proof|verify-proof` and `paycore verify --checkpoint`,
end to end on an SQLite file; the insider edits the file with the plain sqlite3 module, as
anyone with the file could. (The ledger-level tests run the same attacks on PostgreSQL.)"""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from paycore.cli import app

runner = CliRunner()

ENTRIES = """
- idempotency_key: capital
  kind: equity.contribution
  postings:
    - {account: 1001.bank, debit: '1000.00', currency: CNY}
    - {account: 3001.capital, credit: '1000.00', currency: CNY}
- idempotency_key: owed-s1
  kind: payment.capture
  postings:
    - {account: 1001.bank, debit: '250.00', currency: CNY}
    - {account: 2202.payable.s1, credit: '250.00', currency: CNY}
- idempotency_key: owed-s2
  kind: payment.capture
  postings:
    - {account: 1001.bank, debit: '80.00', currency: CNY}
    - {account: 2202.payable.s2, credit: '80.00', currency: CNY}
"""


@pytest.fixture
def books(tmp_path, monkeypatch):
    db = tmp_path / "books.sqlite"
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("PAYCORE_CHECKPOINT_KEY", str(tmp_path / "secret" / "signing.pem"))
    monkeypatch.setenv("PAYCORE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("PAYCORE_CHECKPOINT_KEYS", str(tmp_path / "trusted"))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for args in (["1001.bank", "Bank", "asset", "CNY"], ["3001.capital", "Capital", "equity", "CNY"],
                 ["2202.payable.s1", "Supplier 1", "liability", "CNY"],
                 ["2202.payable.s2", "Supplier 2", "liability", "CNY"]):
        assert runner.invoke(app, ["accounts", "open", *args]).exit_code == 0
    (tmp_path / "entries.yaml").write_text(ENTRIES)
    assert runner.invoke(app, ["post", str(tmp_path / "entries.yaml")]).exit_code == 0
    return db


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _checkpoint_file(tmp_path):
    files = sorted((tmp_path / "checkpoints").glob("checkpoint-*.json"))
    assert len(files) == 1
    return files[0]


def _cut_the_newest_entry(db) -> None:
    """With the sqlite3 module on the file: triggers dropped, the newest entry and its
    postings deleted, the balance rows wound back, the checkpoint log emptied."""
    conn = sqlite3.connect(db)
    with conn:
        for table in ("journal_entries", "postings", "ledger_checkpoints"):
            conn.execute(f"DROP TRIGGER {table}_no_delete")
        # the bank account is in every entry: its last posting's entry is the newest
        entry = conn.execute("SELECT entry_id FROM postings WHERE account_id = (SELECT id FROM "
                             "accounts WHERE code = '1001.bank') ORDER BY account_seq DESC "
                             "LIMIT 1").fetchone()[0]
        legs = conn.execute("SELECT account_id, account_seq, amount FROM postings "
                            "WHERE entry_id = ?", (entry,)).fetchall()
        conn.execute("DELETE FROM postings WHERE entry_id = ?", (entry,))
        conn.execute("DELETE FROM journal_entries WHERE id = ?", (entry,))
        conn.execute("DELETE FROM ledger_checkpoints")
        for account, seq, amount in legs:
            prev = conn.execute("SELECT hash, booked_at FROM postings WHERE account_id = ? AND "
                                "account_seq = ?", (account, seq - 1)).fetchone()
            conn.execute(
                "UPDATE account_balances SET seq = seq - 1, posted_debits = posted_debits - ?, "
                "posted_credits = posted_credits - ?, head_hash = ?, last_booked_at = ? "
                "WHERE account_id = ?",
                (max(amount, 0), max(-amount, 0), prev[0] if prev else "0" * 64,
                 prev[1] if prev else None, account))
    conn.close()


def test_a_cut_tail_passes_verify_but_not_verify_with_the_checkpoint(books, tmp_path):
    assert "signing key" in _ok(["ledger", "keygen"])
    out = _ok(["ledger", "checkpoint"])
    assert "4 accounts, 3 entries" in out
    checkpoint = _checkpoint_file(tmp_path)
    assert "the books extend 1 signed checkpoint" in _ok(["verify", "--checkpoint", str(checkpoint)])

    _cut_the_newest_entry(books)
    assert "verify: OK — 2 entries" in _ok(["verify"])  # the cut is invisible to verify alone
    result = runner.invoke(app, ["verify", "--checkpoint", str(tmp_path / "checkpoints")])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    taken_at = json.loads(checkpoint.read_text())["checkpoint"]["taken_at"]
    assert f"account '2202.payable.s2' posting #1, signed in the checkpoint of {taken_at}" in text
    assert "cut or rewound" in text
    assert "account '1001.bank' posting #3" in text


def test_key_rotation_keeps_old_checkpoints_verifiable(books, tmp_path, monkeypatch):
    _ok(["ledger", "keygen"])
    _ok(["ledger", "checkpoint"])
    old = _checkpoint_file(tmp_path)
    refused = runner.invoke(app, ["ledger", "keygen"])
    assert refused.exit_code == 2 and "never overwritten" in refused.output
    monkeypatch.setenv("PAYCORE_CHECKPOINT_KEY", str(tmp_path / "secret" / "signing-2.pem"))
    _ok(["ledger", "keygen"])
    (tmp_path / "more.yaml").write_text(ENTRIES.replace("owed-s1", "owed-s1-again")
                                        .split("- idempotency_key: owed-s2")[0]
                                        .replace("- idempotency_key: capital", "- idempotency_key: c2"))
    _ok(["post", str(tmp_path / "more.yaml")])
    _ok(["ledger", "checkpoint"])
    both = sorted((tmp_path / "checkpoints").glob("checkpoint-*.json"))
    assert len(both) == 2
    key_ids = {json.loads(p.read_text())["checkpoint"]["key_id"] for p in both}
    assert len(key_ids) == 2
    out = _ok(["verify", "--checkpoint", str(tmp_path / "checkpoints")])
    assert "the books extend 2 signed checkpoints" in out

    # a verifier who trusts only the new key cannot accept the old checkpoint
    new_key = next(p for p in (tmp_path / "trusted").glob("*.pem")
                   if p.stem != json.loads(old.read_text())["checkpoint"]["key_id"])
    result = runner.invoke(app, ["verify", "--checkpoint", str(old), "--public-key", str(new_key)])
    assert result.exit_code == 1
    assert "not among the trusted public keys" in " ".join(result.output.split())


def test_a_tampered_checkpoint_file_is_refused(books, tmp_path):
    _ok(["ledger", "keygen"])
    _ok(["ledger", "checkpoint"])
    path = _checkpoint_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["checkpoint"]["entry_count"] = 2  # an insider making room for a cut
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["verify", "--checkpoint", str(path)])
    assert result.exit_code == 1
    assert "signature does not verify" in " ".join(result.output.split())


def test_a_suppliers_proof_checks_offline(books, tmp_path):
    _ok(["ledger", "keygen"])
    _ok(["ledger", "checkpoint"])
    digest = json.loads(_checkpoint_file(tmp_path).read_text())["checkpoint"]
    head = _checkpoint_file(tmp_path).stem.rsplit("-", 1)[1]
    proof = tmp_path / "s1-proof.json"
    _ok(["ledger", "proof", "2202.payable.s1", "--at", head, "--out", str(proof)])
    assert "2202.payable.s2" not in proof.read_text() and "1001.bank" not in proof.read_text()

    # offline: the supplier has the proof and the public key, no database
    public = next((tmp_path / "trusted").glob("*.pem"))
    out = " ".join(_ok(["ledger", "verify-proof", str(proof), "--public-key", str(public),
                        "--root", digest["root"]]).split())
    assert "proof OK: account 2202.payable.s1" in out and "credit balance 250.00 CNY" in out

    wrong_root = runner.invoke(app, ["ledger", "verify-proof", str(proof), "--public-key",
                                     str(public), "--root", "00" * 32])
    assert wrong_root.exit_code == 1 and "published root" in " ".join(wrong_root.output.split())
    doc = json.loads(proof.read_text())
    doc["account"]["balance"] = -30000  # shown as owed more than the books signed
    proof.write_text(json.dumps(doc))
    result = runner.invoke(app, ["ledger", "verify-proof", str(proof), "--public-key", str(public)])
    assert result.exit_code == 1
    assert "do not lead to the signed root" in " ".join(result.output.split())


def test_checkpoint_refuses_books_that_do_not_prove_out(books, tmp_path):
    _ok(["ledger", "keygen"])
    conn = sqlite3.connect(books)
    with conn:
        conn.execute("UPDATE account_balances SET posted_credits = posted_credits + 1 "
                     "WHERE account_id = (SELECT id FROM accounts WHERE code = '3001.capital')")
    conn.close()
    result = runner.invoke(app, ["ledger", "checkpoint"])
    assert result.exit_code == 1 and "no checkpoint signed" in result.output
    assert not list((tmp_path / "checkpoints").glob("*.json"))


def test_checkpoint_without_a_key_says_how_to_make_one(books, monkeypatch):
    monkeypatch.delenv("PAYCORE_CHECKPOINT_KEY")
    result = runner.invoke(app, ["ledger", "checkpoint"])
    assert result.exit_code == 2
    assert "paycore ledger keygen" in result.output


def test_a_signing_key_others_can_read_is_refused(books, tmp_path):
    _ok(["ledger", "keygen"])
    key = tmp_path / "secret" / "signing.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    result = runner.invoke(app, ["ledger", "checkpoint"])
    assert result.exit_code == 2
    assert "chmod 600" in " ".join(result.output.split())
    assert not list((tmp_path / "checkpoints").glob("*.json"))


def test_a_laned_accounts_proof_names_its_lane(books, tmp_path):
    """A hot account split into lanes has a leaf per lane: a proof is of one lane, asked
    for by --lane and shown as that lane's balance; without --lane it is refused (lane 0's
    balance alone is not the account's), and the lanes' proven balances add up to it."""
    _ok(["accounts", "open", "6001.hot", "Hot income", "income", "CNY", "--lanes", "4"])
    entries = tmp_path / "hot.yaml"
    entries.write_text("".join(
        f"- idempotency_key: hot-{n}\n  kind: payment.commission\n  postings:\n"
        f"    - {{account: 1001.bank, debit: '{n}.00', currency: CNY}}\n"
        f"    - {{account: 6001.hot, credit: '{n}.00', currency: CNY}}\n"
        for n in range(1, 9)))
    _ok(["post", str(entries)])
    _ok(["ledger", "keygen"])
    _ok(["ledger", "checkpoint"])
    head = _checkpoint_file(tmp_path).stem.rsplit("-", 1)[1]
    public = next((tmp_path / "trusted").glob("*.pem"))

    refused = runner.invoke(app, ["ledger", "proof", "6001.hot", "--at", head])
    assert refused.exit_code == 1
    words = " ".join(refused.output.split())
    assert "6001.hot has 4 lanes" in words and "--lane" in words

    proven = 0
    for lane in range(4):
        proof = tmp_path / f"hot-{lane}.json"
        written = " ".join(_ok(["ledger", "proof", "6001.hot", "--lane", str(lane), "--at",
                                head, "--out", str(proof)]).split())
        assert f"proof for lane {lane} of 6001.hot (4 lanes" in written, written
        out = " ".join(_ok(["ledger", "verify-proof", str(proof), "--public-key",
                            str(public)]).split())
        if lane:  # (lane 0's leaf is signed as every one-lane account's: it cannot say so)
            assert f"proof OK: lane {lane} of account 6001.hot" in out, out
            assert "the sum of its lanes" in out
        else:
            assert "proof OK: account 6001.hot" in out
        proven += json.loads(proof.read_text())["account"]["balance"]
    assert proven == -(1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) * 100
    # a one-lane account's proof reads as before, with or without --lane 0
    proof = tmp_path / "bank.json"
    _ok(["ledger", "proof", "1001.bank", "--lane", "0", "--at", head, "--out", str(proof)])
    out = " ".join(_ok(["ledger", "verify-proof", str(proof), "--public-key", str(public)]).split())
    assert "proof OK: account 1001.bank" in out and "lane" not in out
    missing = runner.invoke(app, ["ledger", "proof", "6001.hot", "--lane", "4", "--at", head])
    assert missing.exit_code == 1 and "lane 4" in " ".join(missing.output.split())
