"""Stamp numbers as cashiers type them and as the QR carries them."""

from __future__ import annotations

import pytest

from receipts.numbers import StampNumber, StampNumberError, luhn_check_digit


def test_luhn_matches_the_published_examples() -> None:
    # ISO/IEC 7812 worked example and a well-known test card number.
    assert luhn_check_digit("7992739871") == 3
    assert luhn_check_digit("411111111111111") == 1


def test_printed_form_groups_by_four_and_separates_the_check_digit() -> None:
    number = StampNumber("48210933756102841")
    assert number.printed() == "4821 0933 7561 0284-1"
    assert str(number) == "4821 0933 7561 0284-1"


@pytest.mark.parametrize(
    "typed",
    [
        "4821 0933 7561 0284-1",
        "48210933756102841",
        "4821-0933-7561-0284-1",
        "  4821 0933\t7561 0284 - 1 ",
        "٤٨٢١ ٠٩٣٣ ٧٥٦١ ٠٢٨٤-١",  # typed on an Arabic keyboard
    ],
)
def test_typed_numbers_are_read_leniently(typed: str) -> None:
    assert StampNumber.parse(typed) == StampNumber("48210933756102841")


def test_a_mistyped_digit_is_caught_by_the_check_digit() -> None:
    with pytest.raises(StampNumberError, match="0285-1: the check digit should be 8"):
        StampNumber.parse("4821 0933 7561 0285-1")


def test_swapped_neighbours_are_caught() -> None:
    with pytest.raises(StampNumberError, match="mistyped"):
        StampNumber.parse("4821 0933 7561 0824-1")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("4821 0933 7561 0284", "has 16 digits"),
        ("4821 0933 7561 0284-15", "has 18 digits"),
        ("4821 0933 7561 O284-1", "contains 'O'"),
        ("", "has 0 digits"),
    ],
)
def test_malformed_numbers_say_what_is_wrong(typed: str, message: str) -> None:
    with pytest.raises(StampNumberError, match=message):
        StampNumber.parse(typed)


def test_cti_is_eight_bytes_big_endian_and_round_trips() -> None:
    number = StampNumber("48210933756102841")
    assert number.to_cti() == (48210933756102841).to_bytes(8, "big")
    assert StampNumber.from_cti(number.to_cti()) == number


def test_leading_zeros_survive_the_cti() -> None:
    body = "0000000000000042"
    number = StampNumber(body + str(luhn_check_digit(body)))
    assert StampNumber.from_cti(number.to_cti()).printed().startswith("0000 0000")


@pytest.mark.parametrize("cti", [b"\x00" * 7, b"\xff" * 8, (10**17).to_bytes(8, "big")])
def test_cti_that_is_not_a_stamp_number_is_refused(cti: bytes) -> None:
    with pytest.raises(StampNumberError):
        StampNumber.from_cti(cti)


def test_generated_numbers_are_valid_and_distinct() -> None:
    numbers = {StampNumber.generate() for _ in range(2000)}
    assert len(numbers) == 2000
    assert all(StampNumber.parse(n.printed()) == n for n in numbers)
    # The first digit is uniformly random: with 2000 draws every digit shows up.
    assert {n.digits[0] for n in numbers} == set("0123456789")
