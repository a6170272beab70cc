"""What a finance user trips on (#18 sections 4 and 5): CSV profiles a person writes,
the messages and output of the reconciliation commands, parser warnings, short ids."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

import reconciliation
from ledger.ids import new_entry_id
from paycore.cli import app
from paycore.render import short_id
from reconciliation import CsvProfile, InvalidCsvProfile, parse_statement
from tests.reconciliation.conftest import fixture_bytes

runner = CliRunner()

MINIMAL = {"name": "cmb", "account": "755912345610801", "date_column": "Booking Date",
           "amount_column": "Amount", "currency": "CNY"}


# -- 4. CSV profiles ----------------------------------------------------------------------


def test_a_misspelt_key_is_named_with_the_field_meant() -> None:
    with pytest.raises(InvalidCsvProfile,
                       match=r"unknown field 'balance_colum'; did you mean 'balance_column'\?"):
        CsvProfile.from_mapping({**MINIMAL, "balance_colum": "Balance"})


def test_a_key_like_no_field_lists_the_fields() -> None:
    with pytest.raises(InvalidCsvProfile, match=r"unknown field 'zzz'; known fields: name, "):
        CsvProfile.from_mapping({**MINIMAL, "zzz": 1})


def test_missing_and_mistyped_fields_are_named_not_a_constructor_error() -> None:
    with pytest.raises(InvalidCsvProfile) as caught:
        CsvProfile.from_mapping({"name": "cmb", "amount_column": "Amount", "currency": "CNY",
                                 "skip_rows": "4", "newest_first": "yes"})
    message = str(caught.value)
    assert "missing required field 'account'" in message
    assert "missing required field 'date_column'" in message
    assert "'skip_rows' must be a whole number, found '4'" in message
    assert "'newest_first' must be true or false, found 'yes'" in message
    assert "__init__" not in message


def test_fields_that_cannot_go_together_are_an_invalid_profile() -> None:
    with pytest.raises(InvalidCsvProfile, match="give currency or currency_column"):
        CsvProfile.from_mapping({**MINIMAL, "currency_column": "Currency"})
    with pytest.raises(InvalidCsvProfile, match="expected a mapping"):
        CsvProfile.from_mapping(["name", "cmb"])


def test_yaml_shapes_are_read_as_meant() -> None:
    profile = CsvProfile.from_mapping({**MINIMAL, "description_columns": "Memo",
                                       "reference_column": 2024, "value_date_column": None})
    assert profile.description_columns == ("Memo",)
    assert profile.reference_column == "2024"  # YAML reads a header named 2024 as a number
    assert profile.value_date_column is None


def test_the_example_template_is_a_working_profile() -> None:
    out = runner.invoke(app, ["recon", "profile", "--example"])
    assert out.exit_code == 0, out.output
    assert out.output == reconciliation.CSV_PROFILE_EXAMPLE
    profile = CsvProfile.from_mapping(yaml.safe_load(out.output))
    # it reads the CMB export in fixtures/ as the tests' own profile does
    [statement] = parse_statement(fixture_bytes("csv_signed_amount_cmb.csv"), profile=profile)
    assert statement.closing is not None and len(statement.lines) > 0
    commented = [line for line in out.output.splitlines() if ":" in line and "#" in line]
    assert len(commented) >= 15


def test_the_cli_refuses_a_misspelt_profile_with_the_suggestion(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "balance_colum": "Balance"}))
    statement = tmp_path / "s.csv"
    statement.write_bytes(fixture_bytes("csv_signed_amount_cmb.csv"))
    out = runner.invoke(app, ["statement", "import", str(statement), "--account", "cmb",
                              "--csv-profile", str(path)])
    assert out.exit_code == 2
    assert "did you mean 'balance_column'?" in out.output


# -- 5. messages, logs, warnings, short ids ----------------------------------------------


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite")
    monkeypatch.delenv("PAYCORE_LOG_LEVEL", raising=False)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0


def test_an_unconfigured_account_names_the_command_that_configures_it(cli_db,
                                                                       tmp_path) -> None:
    statement = tmp_path / "s.ofx"
    statement.write_bytes(fixture_bytes("ofx_v1_chase_checking.ofx"))
    out = runner.invoke(app, ["statement", "import", str(statement),
                              "--account", "1001.bank.x"])
    assert out.exit_code == 2
    flat = " ".join(out.output.split())
    assert "no bank account '1001.bank.x' is configured" in flat
    assert "paycore recon configure x --currency CUR" in flat


def test_configure_prints_its_line_and_no_log_lines(cli_db, tmp_path) -> None:
    # a process of its own, as a person runs it: logging is configured once per process
    env = {**os.environ, "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"}
    env.pop("PAYCORE_LOG_LEVEL", None)
    done = subprocess.run(
        [sys.executable, "-c", "from paycore.cli import main; main()", "recon", "configure",
         "chase", "--currency", "USD"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("chase: 1001.bank.chase")
    assert "account.opened" not in done.stdout + done.stderr


def test_the_cli_import_shows_the_skipped_statement(cli_db, tmp_path) -> None:
    runner.invoke(app, ["recon", "configure", "chase", "--currency", "USD",
                        "--account-number", "000000987654321"])
    statement = tmp_path / "download.ofx"
    statement.write_bytes(fixture_bytes("ofx_bank_and_credit_card.ofx"))
    out = runner.invoke(app, ["statement", "import", str(statement), "--account", "chase"])
    assert out.exit_code == 0, out.output
    assert "1 statement(s), 4 lines" in out.output
    assert "skipped statement 4147202001234567:20261121-20261121 of account 4147202001234567 " \
           "(USD, 3 lines)" in " ".join(out.output.split())


def _ofx_v2() -> bytes:
    data = fixture_bytes("ofx_v1_chase_checking.ofx")
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            b'<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" '
            b'NEWFILEUID="NONE"?>\n' + data[data.index(b"<OFX>"):])


def test_the_html_parser_warning_on_ofx_does_not_reach_the_terminal(recwarn) -> None:
    [statement] = parse_statement(_ofx_v2(), format="ofx")
    assert len(statement.lines) == 4
    assert not [w for w in recwarn if "HTML parser" in str(w.message)]
    assert statement.warnings == ()


def test_short_ids_of_entries_made_together_tell_them_apart() -> None:
    ids = [new_entry_id() for _ in range(200)]
    # made within a millisecond or two, they share their first 8 hex digits ...
    assert len({str(i)[:8] for i in ids}) < 5
    # ... and the short id people see does not
    assert len({short_id(i) for i in ids}) == len(ids)
    assert all(len(short_id(i)) == 9 and str(i).endswith(short_id(i)[1:]) for i in ids)

