"""Lenient readers: keys, numbers, rates, flags, times and text in every shape collectors send (docs/domain.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from events.keys import first, pick
from events.lenient import _read_text, clean_text, parse_bool, parse_count, parse_decimal, parse_rate, parse_utc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12400, Decimal(12400)),
        ("12400", Decimal(12400)),
        ("12.4K", Decimal(12400)),
        ("12.4k", Decimal(12400)),
        ("1.1M", Decimal(1_100_000)),
        ("$1,351.57", Decimal("1351.57")),
        ("p... 597.30", Decimal("597.30")),
        ("p… 597.30", Decimal("597.30")),
        ("0.54", Decimal("0.54")),
        (Decimal("3.5"), Decimal("3.5")),
        (2.25, Decimal("2.25")),
        (" 853 ", Decimal(853)),
    ],
)
def test_parse_decimal_reads_every_documented_number_shape(raw: object, expected: Decimal) -> None:
    assert parse_decimal(raw) == expected


NBSP, NARROW_NBSP = "\u00a0", "\u202f"

# (value, region, expected): the region's convention decides; a shape it cannot read, or that could be two different
# numbers when the region is unknown, is None.
REGIONAL_NUMBERS: list[tuple[object, str | None, Decimal | None]] = [
    # Decimal comma: "." or a space groups thousands.
    ("1,2K", "FR", Decimal(1200)),
    ("12,4K", "FR", Decimal(12400)),
    ("1.351,57 €", "FR", Decimal("1351.57")),
    ("12 400", "FR", Decimal(12400)),
    (f"12{NARROW_NBSP}400", "FR", Decimal(12400)),
    ("1 234,5", "FR", Decimal("1234.5")),
    (f"1{NBSP}234,5 €", "ES", Decimal("1234.5")),
    ("0,54", "ES", Decimal("0.54")),
    ("1.200", "DE", Decimal(1200)),
    ("1.234.567", "DE", Decimal(1_234_567)),
    ("1,1 Mio", "DE", Decimal("1.1")),
    ("R$ 1.351,57", "BR", Decimal("1351.57")),
    ("Rp12.400", "ID", Decimal(12400)),
    ("1,1M", "VN", Decimal(1_100_000)),
    ("1,2K", "fr", Decimal(1200)),
    ("1,2K", " it ", Decimal(1200)),
    # Decimal point: "," groups thousands; a space groups them anywhere.
    ("1.2K", "US", Decimal(1200)),
    ("12,400", "MX", Decimal(12400)),
    ("3,208", "MX", Decimal(3208)),
    ("1,234,567", "MX", Decimal(1_234_567)),
    ("$1,351.57", "US", Decimal("1351.57")),
    ("£1,351.57", "GB", Decimal("1351.57")),
    ("p... 597.30", "MX", Decimal("597.30")),
    ("12 400", "US", Decimal(12400)),
    (f"12{NARROW_NBSP}400", "SG", Decimal(12400)),
    ("1.1M", "PH", Decimal(1_100_000)),
    # Unknown region: both marks show the convention (the last one is the decimal).
    ("1,351.57", None, Decimal("1351.57")),
    ("1.351,57", None, Decimal("1351.57")),
    ("1.351,57 €", None, Decimal("1351.57")),
    ("1.234.567,8", None, Decimal("1234567.8")),
    # Unknown region: read with a decimal point where no decimal comma could make it another number.
    ("12400", None, Decimal(12400)),
    ("12 400", None, Decimal(12400)),
    (f"12{NARROW_NBSP}400", None, Decimal(12400)),
    ("12.4K", None, Decimal(12400)),
    ("0.540", None, Decimal("0.540")),
    ("1,234,567", None, Decimal(1_234_567)),
    # Unknown region, ambiguous: 12400 or 12.4, 1.234 or 1234, 1234.5 by a decimal comma only.
    ("12,400", None, None),
    ("1.234", None, None),
    ("1 234,5", None, None),
    ("1,2K", None, None),
    ("1,2K", "", None),
    ("1,2K", "KR", None),  # a region in neither table is unknown
    # A shape the region's convention cannot write is unknown, never the nearest guess.
    ("1,2K", "US", None),
    ("1,2K", "MX", None),
    ("12,40", "GB", None),
    ("12.4K", "FR", None),
    ("1.1M", "DE", None),
    ("1.351,57", "US", None),
    ("$1,351.57", "FR", None),
    ("1,35.57", None, None),
    ("1 2", "FR", None),
    # Numbers passed as numbers are never re-read by a convention.
    (12400, "FR", Decimal(12400)),
    (2.25, "DE", Decimal("2.25")),
    (Decimal("1351.57"), None, Decimal("1351.57")),
]


@pytest.mark.parametrize(("raw", "region", "expected"), REGIONAL_NUMBERS)
def test_parse_decimal_reads_by_the_region_convention(
    raw: object, region: str | None, expected: Decimal | None
) -> None:
    assert parse_decimal(raw, region) == expected


@pytest.mark.parametrize("region", [None, "US", "MX", "GB", "FR", "ES", "DE", "BR", "ID", "VN", "KR"])
def test_decimal_comma_view_count_is_never_read_as_ten_times_more(region: str | None) -> None:
    # The regression: "1,2K" (1.2K in FR) once had its comma dropped and overwrote a correct 1200 with 12000.
    assert parse_count("1,2K", region) in (1200, None)
    assert parse_count("1,2K", region) != 12000


def test_decimal_comma_regression_reads_1200_in_fr_and_unknown_without_a_region() -> None:
    assert parse_count("1,2K", "FR") == 1200
    assert parse_count("1,2K") is None
    assert parse_count("1,2K", None) is None


@pytest.mark.parametrize("raw", [None, "", "   ", "--", "n/a", "abc", True, False, {}, []])
def test_parse_decimal_unreadable_value_is_unknown_not_zero(raw: object) -> None:
    assert parse_decimal(raw) is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        (12400, None, 12400),
        ("12,400", "MX", 12400),
        ("12.4K", None, 12400),
        ("1.1M", None, 1_100_000),
        ("1.1K", None, 1100),
        ("3,208", "MX", 3208),
        ("3.208", "DE", 3208),
        ("7.9", None, 7),
        ("7,9", "FR", 7),
        (0, None, 0),
        ("0", None, 0),
    ],
)
def test_parse_count_gives_whole_counts(raw: object, region: str | None, expected: int) -> None:
    result = parse_count(raw, region)
    assert result == expected
    assert isinstance(result, int)


@pytest.mark.parametrize("raw", [None, "", "--", "views", True])
def test_parse_count_unreadable_is_none_not_zero(raw: object) -> None:
    assert parse_count(raw) is None


def test_parse_count_zero_is_a_known_zero_not_unknown() -> None:
    assert parse_count("0") == 0
    assert parse_count("0") is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.54", Decimal("0.54")),
        ("54%", Decimal("0.54")),
        ("54 %", Decimal("0.54")),
        (54, Decimal("0.54")),
        ("54", Decimal("0.54")),
        ("0.67", Decimal("0.67")),
        ("100%", Decimal(1)),
        ("0%", Decimal(0)),
        (0, Decimal(0)),
    ],
)
def test_parse_rate_is_a_fraction(raw: object, expected: Decimal) -> None:
    assert parse_rate(raw) == expected


def test_post_rate_of_54_percent_equals_the_fraction_form() -> None:
    assert parse_rate("54%") == parse_rate("0.54") == Decimal("0.54")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [("0,54", "FR", Decimal("0.54")), ("54,5 %", "ES", Decimal("0.545")), ("0,54", "US", None), ("0,54", None, None)],
)
def test_parse_rate_reads_by_the_region_convention(raw: str, region: str | None, expected: Decimal | None) -> None:
    assert parse_rate(raw, region) == expected


@pytest.mark.parametrize("raw", [None, "", "--", "n/a"])
def test_parse_rate_unreadable_is_none(raw: object) -> None:
    assert parse_rate(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (2, True),
        (1.0, True),
        (0.0, False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("yes", True),
        ("no", False),
        ("y", True),
        ("n", False),
        ("t", True),
        ("f", False),
        (" yes ", True),
    ],
)
def test_parse_bool_reads_flag_shapes(raw: object, expected: bool) -> None:
    assert parse_bool(raw) is expected


@pytest.mark.parametrize("raw", [None, "", "  ", "maybe", "2x", {}, []])
def test_parse_bool_unreadable_is_none(raw: object) -> None:
    assert parse_bool(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-04-20 03:15:42", datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)),
        ("2026/04/20 03:15:42", datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)),
        ("2026-04-20 03:15", datetime(2026, 4, 20, 3, 15, tzinfo=UTC)),
        ("2026-04-20", datetime(2026, 4, 20, tzinfo=UTC)),
        ("2026/04/20", datetime(2026, 4, 20, tzinfo=UTC)),
        ("2026-04-20T03:15:42Z", datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)),
        ("2026-04-20T03:15:42", datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)),
        ("2026-04-20T05:15:42+02:00", datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)),
    ],
)
def test_parse_utc_reads_collector_times_as_utc(raw: str, expected: datetime) -> None:
    parsed = parse_utc(raw)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


def test_parse_utc_zone_less_collector_time_is_taken_as_utc_not_local() -> None:
    parsed = parse_utc("2026-04-20 03:15:42")
    assert parsed is not None
    assert parsed.tzinfo is not None
    assert parsed.astimezone(timezone(timedelta(hours=-6))).hour == 21


@pytest.mark.parametrize("raw", [None, "", "  ", "yesterday", "20/04/2026 03:15", {}])
def test_parse_utc_unreadable_is_none(raw: object) -> None:
    assert parse_utc(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  lupita.makeup  ", "lupita.makeup"),
        ("x", "x"),
        (0, "0"),
        (7494011122233344455, "7494011122233344455"),
        ("", None),
        ("   ", None),
        (None, None),
        ({}, None),
        ({"a": 1}, None),
        ([], None),
        (["x"], None),
    ],
)
def test_clean_text_strips_and_treats_empty_or_non_scalar_as_unknown(raw: object, expected: str | None) -> None:
    assert clean_text(raw) == expected


def test_pick_reads_camel_case_or_its_snake_case_twin() -> None:
    assert pick({"platformProductId": "a"}, "platformProductId") == "a"
    assert pick({"platform_product_id": "b"}, "platformProductId") == "b"
    assert pick({"platformProductId": None, "platform_product_id": "b"}, "platformProductId") == "b"
    assert pick({}, "platformProductId") is None


def test_first_skips_missing_and_empty_values() -> None:
    assert (
        first({"promotionViewCount": "", "promotion_view": "12.4K"}, "promotionViewCount", "promotionView") == "12.4K"
    )
    assert first({"promotionViewCount": 0}, "promotionViewCount", "promotionView") == 0
    assert first({}, "a", "b") is None


def test_a_word_after_the_number_is_not_a_multiplier() -> None:
    assert parse_decimal("1.2 mil") == Decimal("1.2")
    assert parse_decimal("3 Mio") == Decimal("3")


@given(
    text=st.from_regex(r"\A\s?[0-9]{1,9}(\.[0-9]{1,5})?\s?\Z") | st.text(alphabet="0123456789.,", max_size=8),
    region=st.sampled_from(["MX", "us", "FR", "DE", "", "ZZ", None]),
)
@example(text="1" * 29, region=None)  # past the 28 digits of Decimal's context: both round the same
@example(text="1" * 20 + "." + "9" * 9, region="MX")
def test_the_shortcuts_for_plain_numbers_read_what_the_general_rules_read(text: str, region: str | None) -> None:
    """Digits, and digits with one decimal point in a decimal-point region, skip the general reading:
    the same number, written the same (str() is what fingerprints and rows carry)."""
    expected = _read_text(text.strip(), region)
    assert str(parse_decimal(text, region)) == str(expected)
