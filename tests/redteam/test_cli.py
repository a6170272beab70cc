"""Red team (issue #15 review): four eyes on the command line. `--as` is a claim nobody
checks: one shell is every person, and the system too. Now --as is a console staff user
who gives their password (the `cli` helper gives the named person's own unless told
otherwise). SQLite file (the CLI's own database; what is attacked is the command line, not
storage)."""

from __future__ import annotations

import re

from tests.paycore.test_payout_controls_cli import NUMBER, STAFF, cli, cli_db

__all__ = ["cli_db"]


def _account() -> str:
    made = cli("beneficiaries", "add", "sup-9", "--holder", "Ningbo Tools Ltd.", "--as", "alice",
               number=NUMBER)
    assert made.exit_code == 0, made.output
    found = re.search(r"(ba_[0-9a-f]+)", made.output)
    assert found is not None
    return found.group(1)


def test_one_shell_is_not_two_people(cli_db):
    account = _account()
    # alice's shell knows alice's password, not bob's
    checked = cli("beneficiaries", "verify", account, "--as", "bob", password=STAFF["alice"])
    assert checked.exit_code != 0, "verified as bob by alice's shell, with no credential"


def test_a_person_cannot_act_as_the_system(cli_db):
    account = _account()
    assert cli("beneficiaries", "verify", account, "--as", "bob").exit_code == 0
    posed = cli("payments", "request-payout", "sup-9", "40.00", "CNY", "--account", account,
                "--id", "po-posed", "--as", "system:settlement")
    assert posed.exit_code != 0, posed.output


def test_the_same_name_in_capitals_is_the_same_person(cli_db):
    account = _account()
    again = cli("beneficiaries", "verify", account, "--as", "Alice")
    assert again.exit_code == 2 and "FourEyesViolation" in again.output
