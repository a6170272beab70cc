from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from paycore.cli import app

runner = CliRunner()


@pytest.fixture
def sqlite_url(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"
    monkeypatch.setenv("PAYCORE_DATABASE_URL", url)
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    return url


def test_demo_tells_the_story_and_proves_the_books(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    result = runner.invoke(app, ["demo", "--db", str(tmp_path / "demo.sqlite")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "paycore serve --demo" in out  # it ends by saying how to open the console (#19)
    assert "IdempotencyConflict" in out and "UnbalancedEntry" in out
    assert "books untouched" in out
    # checkout: sandbox banks, a duplicate applied once, a forged notification refused, the
    # banks' books agree with the ledger's clearing accounts
    assert "notified twice: applied once" in out and "forged" in out
    assert "books and banks agree" in out
    # lending: automatic approval, manual review, a settlement offset that replays as nothing
    assert "manual_review" in out and "replayed=True, nothing posted" in out
    assert "loan book = ledger accounts: yes" in out
    # the risk team (#20): a product defined at run time, a maturity rolled off a closed
    # day, late money reversed and re-accrued, an overpayment refunded by a payout
    def said(*words: str) -> bool:  # rich wraps long lines wherever the dates put them
        return re.search(r"\s+".join(map(re.escape, words)), out) is not None
    assert said("paycore", "products", "define", "short_sc") and said("the", "next",
                                                                       "business", "day")
    assert said("correction", "1:", "repayment") and said("re-accrued")
    assert re.search(r"refunded\s+to\s+\S+\s+verified\s+account:\s+payout\s+ovp-", out)
    assert said("loan", "book", "=", "ledger", "accounts,", "after", "all", "of", "it:", "yes")
    # reconciliation: re-import adds nothing; the one unknown line is explained, then resolved
    assert "nothing added" in out and "fully explained" in out
    assert "the difference is now 0.00 (explained)" in out
    # webhooks: the dispatch job delivers the merchant's events to its receiver, signed
    assert "$ paycore worker --once   (1 job: webhooks.dispatch)" in out
    assert re.search(r"received payment\.\w+\s+evt_[0-9a-f]+\s+signature valid", out)
    found = re.search(r"(\d+) events received, every signature valid: .*payment\.captured", out)
    assert found and int(found.group(1)) >= 12
    # a bank's export of two accounts: the other account's statement is shown skipped
    assert re.search(r"also holds statement DEP\d+/00001/001 of account DEPOSIT/880012345001"
                     r"\s+\(CNY, 1 line\):\s+not unionpay's\s+settlement\s+account,\s+so skipped",
                     out)
    # the final proof holds the books against a checkpoint signed with a key kept outside them
    assert "$ paycore verify --checkpoint" in out
    # the verdict is the last word on the books; only how to open the console follows (#19)
    assert re.search(r"verify: OK — \d+ entries, \d+ postings, \d+ accounts, chains intact; "
                     r"the books extend 1 signed checkpoint\s*Open the operations console on "
                     r"these books: run paycore serve --demo[^\n]*\n[^\n]*password\.\s*$", out)


def test_open_post_balance_statement_verify(sqlite_url, tmp_path):
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for args in (["1001.bank", "Bank", "asset", "CNY", "--limit", "credits_must_not_exceed_debits"],
                 ["3001.capital", "Capital", "equity", "CNY"]):
        result = runner.invoke(app, ["accounts", "open", *args])
        assert result.exit_code == 0, result.output
    entries = tmp_path / "entries.yaml"
    entries.write_text(
        "- idempotency_key: cap-1\n  kind: equity.contribution\n  postings:\n"
        "    - {account: 1001.bank, debit: '1000.50', currency: CNY}\n"
        "    - {account: 3001.capital, credit: '1000.50', currency: CNY}\n"
    )
    result = runner.invoke(app, ["post", str(entries)])
    assert result.exit_code == 0 and "posted" in result.output
    result = runner.invoke(app, ["post", str(entries)])
    assert "replayed" in result.output
    result = runner.invoke(app, ["balance", "1001.bank"])
    assert "posted 1,000.50 CNY" in result.output
    assert runner.invoke(app, ["verify"]).exit_code == 0
    result = runner.invoke(app, ["trial-balance", "--json"])
    assert json.loads(result.output)["balanced"] is True


def test_bad_input_is_a_clear_error_and_exit_2(sqlite_url, tmp_path):
    runner.invoke(app, ["db", "upgrade"])
    runner.invoke(app, ["accounts", "open", "1001.bank", "Bank", "asset", "CNY"])
    runner.invoke(app, ["accounts", "open", "3001.capital", "Capital", "equity", "CNY"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"idempotency_key": "x", "postings": [
        {"account": "1001.bank", "debit": "10.00", "currency": "CNY"},
        {"account": "3001.capital", "credit": "9.00", "currency": "CNY"}]}))
    result = runner.invoke(app, ["post", str(bad)])
    assert result.exit_code == 2
    assert "does not balance" in result.output
    assert "posted 0.00" in runner.invoke(app, ["balance", "1001.bank"]).output


@pytest.mark.parametrize(("text", "said"), [
    ("just text\n", "entry 1: expected a mapping"),
    ("idempotency_key: a\npostings: [1, 2]\n", "entry 'a' posting 1: needs account and currency"),
    ('{"idempotency_key": "k", "postings": "none"}', "entry 'k': postings must be a list"),
    ('{"idempotency_key": "k", "postings": [], "effective_date": "2026-13-01"}',
     "effective_date '2026-13-01' is not a date"),
    ("a: [\n", "while parsing"),
    ('[{"idempotency_key": "k", "postings": [{"account": "x", "currency": "CNY", '
     '"debit": "ten"}]}]', "'ten' is not an amount"),
])
def test_a_malformed_entry_file_is_refused_saying_where(sqlite_url, tmp_path, text, said):
    # before, each was a Python traceback (TypeError, AttributeError, ValueError, YAML's
    # ParserError) from parsing outside the command's error handling
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    path = tmp_path / "entries.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["post", str(path)])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2), not an error escaping
    verified = runner.invoke(app, ["verify"])
    assert verified.exit_code == 0 and "0 entries" in verified.output, verified.output


def _open_bank_and_capital() -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for code, kind in (("1001.bank", "asset"), ("3001.capital", "equity")):
        assert runner.invoke(app, ["accounts", "open", code, code, kind, "CNY"]).exit_code == 0


def test_an_unquoted_amount_is_posted_as_written(sqlite_url, tmp_path):
    # YAML (and JSON) read an unquoted 1234567890123456.78 as a float, which keeps ~16
    # significant digits: posted through str(float) it was 1234567890123456.80, 0.02 CNY
    # the file never said, without a word. An amount is the digits written.
    _open_bank_and_capital()
    path = tmp_path / "entries.yaml"
    path.write_text("idempotency_key: big\npostings:\n"
                    "  - {account: 1001.bank, currency: CNY, debit: 1234567890123456.78}\n"
                    "  - {account: 3001.capital, currency: CNY, credit: 1234567890123456.78}\n")
    posted = runner.invoke(app, ["post", str(path)])
    assert posted.exit_code == 0, posted.output
    shown = runner.invoke(app, ["balance", "1001.bank"]).output
    assert "posted 1,234,567,890,123,456.78 CNY" in shown, shown


@pytest.mark.parametrize(("text", "said"), [
    # a currency moneyed does not know ("RMB" for CNY): CurrencyDoesNotExist, a traceback
    ('{"idempotency_key": "k", "postings": [{"account": "1001.bank", "currency": "RMB", '
     '"debit": "1"}, {"account": "3001.capital", "currency": "RMB", "credit": "1"}]}',
     "entry 'k' posting 1: 'RMB' is not a currency"),
    # an account that is a list: TypeError (unhashable) in the ledger, a traceback
    ('{"idempotency_key": "k", "postings": [{"account": ["1001.bank"], "currency": "CNY", '
     '"debit": "1"}, {"account": "3001.capital", "currency": "CNY", "credit": "1"}]}',
     "entry 'k' posting 1: account ['1001.bank'] is not an account code or id"),
    # an unquoted date in the metadata (YAML reads a date): TypeError, not JSON serializable
    ("idempotency_key: k\nmetadata: {invoice_date: 2026-05-01}\npostings:\n"
     "  - {account: 1001.bank, currency: CNY, debit: '1'}\n"
     "  - {account: 3001.capital, currency: CNY, credit: '1'}\n",
     "entry 'k': metadata must be JSON"),
    # a number with a fraction in the metadata: read exactly (a Decimal, never a binary
    # float), which the books' JSON cannot hold exactly everywhere: quote it
    ("idempotency_key: k\nmetadata: {fx_rate: 7.1234}\npostings:\n"
     "  - {account: 1001.bank, currency: CNY, debit: '1'}\n"
     "  - {account: 3001.capital, currency: CNY, credit: '1'}\n",
     "quote dates and numbers with a fraction"),
    # YAML's infinity is no amount
    ("idempotency_key: k\npostings:\n"
     "  - {account: 1001.bank, currency: CNY, debit: .inf}\n"
     "  - {account: 3001.capital, currency: CNY, credit: .inf}\n",
     "'.inf' is not a number an entry can hold"),
])
def test_an_entry_the_ledger_cannot_take_is_refused_saying_where(sqlite_url, tmp_path, text,
                                                                  said):
    _open_bank_and_capital()
    path = tmp_path / "entries.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["post", str(path)])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2), not an error escaping
    verified = runner.invoke(app, ["verify"])
    assert verified.exit_code == 0 and "0 entries" in verified.output, verified.output


@pytest.mark.parametrize("account", ["²", "x[/y]"])
def test_a_hostile_account_argument_is_refused_in_words(sqlite_url, account):
    # '²' is a digit to str.isdigit but not to int(): ValueError; a refusal naming
    # 'x[/y]' was read as rich markup: MarkupError. Both were tracebacks, exit 1.
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["balance", account])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "UnknownAccount" in result.output and account in result.output
