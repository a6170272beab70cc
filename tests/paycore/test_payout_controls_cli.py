"""Payout controls from the command line: every change names its person (`--as`, a console
staff user who gives their password), four eyes compare them, the number is never an
argument nor printed; SQLite file."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from paycore.cli import app

runner = CliRunner()
NUMBER = "6222020200112233445"
#: the console staff users of these tests, each with their own password
STAFF = {name: f"{name}-secret-passphrase" for name in ("alice", "bob", "carol", "ops")}


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite")
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("PAYCORE_ACCOUNT_KEYS", "cli1:" + "A" * 43 + "=")
    monkeypatch.setenv("PAYCORE_PAYOUT_COOLING_OFF_HOURS", "0")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    for name, password in STAFF.items():
        added = runner.invoke(app, ["staff", "add", name, "--role", "payments"],
                              env={"PAYCORE_STAFF_PASSWORD": password})
        assert added.exit_code == 0, added.output
    for args in (["2202.payable.sup-9", "Payable", "liability", "CNY", "--limit",
                  "debits_must_not_exceed_credits"],
                 ["1102.clearing.bank", "Clearing", "asset", "CNY"]):
        assert runner.invoke(app, ["accounts", "open", *args]).exit_code == 0
    entries = tmp_path / "sales.yaml"
    entries.write_text(
        "- idempotency_key: sale-1\n  kind: payment.capture\n  postings:\n"
        "    - {account: 1102.clearing.bank, debit: '100.00', currency: CNY}\n"
        "    - {account: 2202.payable.sup-9, credit: '100.00', currency: CNY}\n")
    assert runner.invoke(app, ["post", str(entries)]).exit_code == 0


def cli(*args: str, number: str | None = None, password: str | None = None):
    """The command, run by the person `--as` names (their own password), unless
    `password` says what the shell knows instead."""
    env = {"PAYCORE_ACCOUNT_NUMBER": number} if number else {}
    if "--as" in args:
        person = args[args.index("--as") + 1].strip().lower()
        given = password if password is not None else STAFF.get(person, "not-a-password")
        env["PAYCORE_STAFF_PASSWORD"] = given
    result = runner.invoke(app, list(args), env=env)
    assert NUMBER not in result.output
    return result


def test_register_verify_request_approve_with_four_eyes(cli_db):
    made = cli("beneficiaries", "add", "sup-9", "--holder", "Ningbo Tools Ltd.", "--as", "alice",
               number=NUMBER)
    assert made.exit_code == 0, made.output
    assert "***3445" in made.output and "unverified" in made.output
    account = re.search(r"(ba_[0-9a-f]+)", made.output).group(1)

    same = cli("beneficiaries", "verify", account, "--as", "alice")
    assert same.exit_code == 2 and "FourEyesViolation" in same.output
    unverified = cli("payments", "request-payout", "sup-9", "40.00", "CNY", "--account", account,
                     "--as", "alice")
    assert unverified.exit_code == 2 and "unverified" in unverified.output
    assert cli("beneficiaries", "verify", account, "--as", "bob").exit_code == 0

    asked = cli("payments", "request-payout", "sup-9", "40.00", "CNY", "--account", account,
                "--id", "po-cli-1", "--as", "alice")
    assert asked.exit_code == 0, asked.output
    assert "pending_approval" in asked.output
    too_much = cli("payments", "request-payout", "sup-9", "60.01", "CNY", "--account", account,
                   "--as", "alice")
    assert too_much.exit_code == 2 and "BalanceLimitExceeded" in too_much.output
    assert "po-cli-1" in cli("payments", "pending").output

    own = cli("payments", "approve", "po-cli-1", "--as", "alice")
    assert own.exit_code == 2 and "FourEyesViolation" in own.output
    ok = cli("payments", "approve", "po-cli-1", "--as", "bob")
    assert ok.exit_code == 0 and "requested" in ok.output

    trail = cli("beneficiaries", "audit", "--supplier", "sup-9")
    for action, actor in (("account.added", "user:alice"), ("account.verified", "user:bob"),
                          ("payout.requested", "user:alice"), ("payout.approved", "user:bob")):
        assert re.search(rf"{actor}\s+│\s+{re.escape(action)}", trail.output), trail.output
    assert cli("verify").exit_code == 0


def test_bindings_and_rotation(cli_db, monkeypatch):
    assert cli("bindings", "add", "shop-a", "sup-9", "--as", "ops").exit_code == 0
    assert "shop-a -> sup-9" in cli("bindings", "list").output
    made = cli("beneficiaries", "add", "sup-9", "--holder", "Ningbo", "--as", "alice",
               number=NUMBER)
    account = re.search(r"(ba_[0-9a-f]+)", made.output).group(1)
    monkeypatch.setenv("PAYCORE_ACCOUNT_KEYS", "cli2:" + "B" * 43 + "=,cli1:" + "A" * 43 + "=")
    rekeyed = cli("beneficiaries", "rekey", "--as", "ops")
    assert rekeyed.exit_code == 0 and "1 accounts re-encrypted under key cli2" in rekeyed.output
    # the old key may go now: the register still reads (a duplicate is still found)
    monkeypatch.setenv("PAYCORE_ACCOUNT_KEYS", "cli2:" + "B" * 43 + "=")
    again = cli("beneficiaries", "add", "sup-9", "--holder", "Ningbo", "--as", "carol",
                number=NUMBER)
    assert again.exit_code == 2 and account in again.output and "already has" in again.output
    assert "cli" in cli("beneficiaries", "new-key", "cli3").output


def test_as_is_a_staff_user_who_proves_it(cli_db):
    """--as is authenticated like a console login: an unknown name, a wrong password, a
    disabled or locked user, a viewer, a system job or a key is refused, and nothing is
    recorded."""
    made = cli("beneficiaries", "add", "sup-9", "--holder", "Ningbo", "--as", "alice",
               number=NUMBER)
    account = re.search(r"(ba_[0-9a-f]+)", made.output).group(1)
    assert runner.invoke(app, ["staff", "add", "vera", "--role", "viewer"],
                         env={"PAYCORE_STAFF_PASSWORD": "vera-secret-passphrase"}
                         ).exit_code == 0
    for who, password in (("mallory", "mallory-secret-passphrase"), ("bob", STAFF["alice"]),
                          ("system:settlement", STAFF["bob"]), ("key:abc123", STAFF["bob"]),
                          ("vera", "vera-secret-passphrase")):
        refused = cli("beneficiaries", "verify", account, "--as", who, password=password)
        assert refused.exit_code == 2 and "NotAuthenticated" in refused.output, refused.output
    # bob's password guessed wrong four more times (five in all) locks him out, even from
    # his own password, until the lock-out ends
    for _ in range(4):
        assert cli("beneficiaries", "verify", account, "--as", "bob", password="guess").exit_code == 2
    locked = cli("beneficiaries", "verify", account, "--as", "bob")
    assert locked.exit_code == 2 and "NotAuthenticated" in locked.output
    assert runner.invoke(app, ["staff", "disable", "carol"]).exit_code == 0
    assert cli("beneficiaries", "verify", account, "--as", "carol").exit_code == 2
    trail = cli("beneficiaries", "audit", "--subject", account).output
    assert "account.verified" not in trail
    # an operator who is a staff user verifies it (recorded as user:<name>)
    done = cli("beneficiaries", "verify", account, "--as", "OPS")
    assert done.exit_code == 0, done.output
    assert "user:ops" in cli("beneficiaries", "audit", "--subject", account).output


def test_an_account_number_is_never_an_argument(cli_db):
    # found by the README audit: `--number 6222…` on the command line was taken (it stays
    # in the shell's history and the process list); now there is no such option
    on_line = runner.invoke(app, ["beneficiaries", "add", "sup-8", "--holder", "Ningbo Tools",
                                  "--number", NUMBER, "--as", "alice"],
                            env={"PAYCORE_STAFF_PASSWORD": STAFF["alice"]})
    assert on_line.exit_code == 2 and "No such option: --number" in on_line.output
    assert "--number" not in runner.invoke(app, ["beneficiaries", "add", "--help"]).output
    # prompted without echo: what the person typed is never shown back
    prompted = runner.invoke(app, ["beneficiaries", "add", "sup-8", "--holder", "Ningbo Tools",
                                   "--as", "alice"], input=NUMBER + "\n",
                             env={"PAYCORE_STAFF_PASSWORD": STAFF["alice"]})
    assert prompted.exit_code == 0, prompted.output
    assert "Account number" in prompted.output and NUMBER not in prompted.output
    assert "***3445" in prompted.output and "unverified" in prompted.output
