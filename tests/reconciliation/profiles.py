"""The CSV profiles of the two banks whose exports are in fixtures/."""

from __future__ import annotations

from reconciliation import CsvProfile

CMB_SIGNED = CsvProfile(
    name="cmb-corporate",
    account="755912345610801",
    date_column="Booking Date",
    value_date_column="Value Date",
    amount_column="Amount",
    balance_column="Balance",
    currency_column="Currency",
    reference_column="Bank Reference",
    end_to_end_id_column="End To End Id",
    counterparty_name_column="Counterparty",
    counterparty_account_column="Counterparty Account",
    description_columns=("Description",),
    thousands_separator=",",
)

SPARKASSE_DEBIT_CREDIT = CsvProfile(
    name="sparkasse-umsatzanzeige",
    account="DE44500105175407324931",
    date_column="Buchungstag",
    date_format="%d.%m.%Y",
    value_date_column="Valuta",
    debit_column="Soll",
    credit_column="Haben",
    balance_column="Saldo",
    currency="EUR",
    end_to_end_id_column="Kundenreferenz",
    counterparty_name_column="Auftraggeber/Empfänger",
    counterparty_account_column="IBAN",
    description_columns=("Verwendungszweck",),
    delimiter=";",
    skip_rows=4,
    decimal_separator=",",
    thousands_separator=".",
    encoding="cp1252",
    newest_first=True,
)
