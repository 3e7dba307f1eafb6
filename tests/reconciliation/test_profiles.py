"""Import profiles: the shipped ones load, and a bad profile file is refused naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciliation.importers import ProfileError, ProfileSet, load_profile, load_profiles
from reconciliation.lines import SettlementCategory, SourceKind

GOOD = """\
[profile]
name = "bank-x"
version = 2
[amount]
currency = "EUR"
[columns]
booking_date = "Date"
amount = "Amount"
"""


def test_the_shipped_profiles_cover_every_export(profiles: ProfileSet) -> None:
    names = {profile.label for profile in profiles}
    assert {
        "treasury-default@1",
        "treasury-fr@1",
        "treasury-ar-1256@1",
        "treasury-xlsx@1",
        "settlement-sandbox@1",
        "settlement-cmi@1",
        "settlement-stripe@1",
    } <= names
    assert profiles.get("treasury-ar-1256").encoding == "cp1256"
    assert profiles.get("treasury-fr").encoding == "cp1252"
    assert profiles.get("treasury-xlsx").source is SourceKind.TREASURY_XLSX
    stripe = profiles.get("settlement-stripe")
    assert stripe.source is SourceKind.SETTLEMENT
    assert stripe.categories["dispute"] is SettlementCategory.CHARGEBACK
    assert len(set(profiles)) == len(profiles.profiles)  # profiles can be kept in sets and dict keys


def test_a_profile_is_picked_by_name_and_latest_version(tmp_path: Path) -> None:
    (tmp_path / "bank-x.v2.toml").write_text(GOOD)
    (tmp_path / "bank-x.v1.toml").write_text(GOOD.replace("version = 2", "version = 1"))
    found = load_profiles(tmp_path)
    assert found.get("bank-x").version == 2
    assert found.get("bank-x", 1).version == 1
    with pytest.raises(LookupError, match="has no version 3"):
        found.get("bank-x", 3)
    with pytest.raises(LookupError, match="no import profile named 'bank-y'"):
        found.get("bank-y")


def test_the_digest_changes_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    first = load_profile(path).digest
    path.write_text(GOOD + "\n# a comment\n")
    assert load_profile(path).digest != first


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (("version = 2", 'version = "two"'), "profile.version", "Expected `int`, got `str`"),
        (("[amount]", "[amount]\ncolour = 1"), "amount", "unknown field `colour`"),
        (('currency = "EUR"', 'currency = "EURO"'), "amount.currency", "three capital letters"),
        (('amount = "Amount"', ""), "columns.amount", "amount.sign = 'signed' needs this column"),
        (("[amount]", '[file]\nencoding = "latin-9x"\n[amount]'), "file.encoding", "unknown encoding"),
        (("[amount]", '[file]\nencoding = "utf-16"\n[amount]'), "file.encoding", "not ASCII-compatible"),
        (("[amount]", '[file]\ndelimiter = ";;"\n[amount]'), "file.delimiter", "one character"),
        (("[amount]", '[dates]\nformat = "%d/%m"\n[amount]'), "dates.format", "does not read a whole date"),
        (
            ("[amount]", '[numbers]\ndecimal_mark = ";"\n[amount]'),
            "numbers.decimal_mark",
            "Invalid enum value",
        ),
        (
            ("[amount]", '[numbers]\ndecimal_mark = ","\nthousands_separators = [","]\n[amount]'),
            "numbers.thousands_separators",
            "cannot separate thousands",
        ),
        (('booking_date = "Date"', ""), "columns", "missing required field `booking_date`"),
        (("[columns]", '[columns]\ngross = "Gross"'), "columns.gross", "only settlement profiles"),
        (('name = "bank-x"', 'name = "Bank X"'), "profile.name", "lower-case letters"),
        (
            (
                'currency = "EUR"',
                'sign = "indicator"\ncurrency = "EUR"\ncredit_marks = ["C"]\ndebit_marks = ["c"]',
            ),
            "columns.indicator",
            "needs this column",
        ),
    ],
)
def test_a_bad_profile_names_the_file_and_the_key(
    tmp_path: Path, change: tuple[str, str], key: str, problem: str
) -> None:
    path = tmp_path / "bank-x.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert problem in str(caught.value)


def test_broken_toml_names_the_file_and_the_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[profile\nname = 'x'\n")
    with pytest.raises(ProfileError, match=r"broken\.toml: is not valid TOML: .*line 1"):
        load_profile(path)


def test_indicator_marks_must_not_overlap(tmp_path: Path) -> None:
    path = tmp_path / "marks.toml"
    path.write_text(
        GOOD.replace('amount = "Amount"', 'amount = "Amount"\nindicator = "DC"').replace(
            'currency = "EUR"',
            'sign = "indicator"\ncurrency = "EUR"\ncredit_marks = ["C"]\ndebit_marks = ["c"]',
        )
    )
    with pytest.raises(ProfileError, match=r"amount\.debit_marks: \['c'\] cannot mean both credit and debit"):
        load_profile(path)


def test_settlement_profiles_need_provider_and_categories(tmp_path: Path) -> None:
    path = tmp_path / "acq.toml"
    settlement = """\
[profile]
name = "acq"
version = 1
kind = "settlement"
provider = "acq"
[amount]
currency = "EUR"
[columns]
booking_date = "Date"
gross = "Gross"
fee = "Fee"
category = "Type"
"""
    path.write_text(settlement)
    with pytest.raises(
        ProfileError,
        match=r"acq\.toml: categories: map the report's categories to the ledger's \(capture, refund",
    ):
        load_profile(path)
    path.write_text(settlement.replace('provider = "acq"\n', ""))
    with pytest.raises(ProfileError, match=r"profile\.provider: a settlement profile names its provider"):
        load_profile(path)
    path.write_text(settlement + '[categories]\nsale = "purchase"\n')
    with pytest.raises(
        ProfileError, match=r"acq\.toml: categories\.sale: 'purchase' is not one of capture, refund"
    ):
        load_profile(path)


def test_the_same_name_and_version_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").write_text(GOOD)
    with pytest.raises(
        ProfileError, match=r"b\.toml: profile\.version: bank-x@2 is also defined in .*a\.toml"
    ):
        load_profiles(tmp_path)
