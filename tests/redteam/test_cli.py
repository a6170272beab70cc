"""Red team (issue #15 review): four eyes on the command line. `--as` is a claim nobody
checks: one shell is every person, and the system too. SQLite file (the CLI's own
database; what is attacked is the command line, not storage)."""

from __future__ import annotations

import re

import pytest

from tests.paycore.test_payout_controls_cli import NUMBER, cli, cli_db

__all__ = ["cli_db"]


def _account() -> str:
    made = cli("beneficiaries", "add", "sup-9", "--holder", "Ningbo Tools Ltd.", "--as", "alice",
               number=NUMBER)
    assert made.exit_code == 0, made.output
    found = re.search(r"(ba_[0-9a-f]+)", made.output)
    assert found is not None
    return found.group(1)


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (money can leave): the CLI records whoever --as names and authenticates "
    "nobody: one operator with the database URL registers an account as alice and "
    "verifies it as bob, then requests and approves the payout the same way; four eyes "
    "on the command line are an honour system (the console authenticates its staff, the "
    "CLI does not)"))
def test_one_shell_is_not_two_people(cli_db):
    account = _account()
    checked = cli("beneficiaries", "verify", account, "--as", "bob")
    assert checked.exit_code != 0, "verified as bob by alice's shell, with no credential"


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (money can leave): --as system:<anything> is taken as is, so a person "
    "requests a payout as 'system:settlement' (whose payouts a staff member then "
    "approves as if the settlement run had asked) or approves as a system, and the "
    "audit trail names no person"))
def test_a_person_cannot_act_as_the_system(cli_db):
    account = _account()
    assert cli("beneficiaries", "verify", account, "--as", "bob").exit_code == 0
    posed = cli("payments", "request-payout", "sup-9", "40.00", "CNY", "--account", account,
                "--id", "po-posed", "--as", "system:settlement")
    assert posed.exit_code != 0, posed.output


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (money can leave): --as Alice and --as alice are two people to the four-eyes "
    "checks (staff usernames are lower-case only; --as and key holders are not "
    "normalised)"))
def test_the_same_name_in_capitals_is_the_same_person(cli_db):
    account = _account()
    again = cli("beneficiaries", "verify", account, "--as", "Alice")
    assert again.exit_code == 2 and "FourEyesViolation" in again.output
