"""Lenient readers: keys, numbers, rates, flags, times and text in every shape collectors send (DOMAIN.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from events.keys import first, pick
from events.lenient import clean_text, parse_bool, parse_count, parse_decimal, parse_rate, parse_utc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12400, Decimal(12400)),
        ("12400", Decimal(12400)),
        ("12,400", Decimal(12400)),
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


@pytest.mark.parametrize("raw", [None, "", "   ", "--", "n/a", "abc", True, False, {}, []])
def test_parse_decimal_unreadable_value_is_unknown_not_zero(raw: object) -> None:
    assert parse_decimal(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12400, 12400),
        ("12,400", 12400),
        ("12.4K", 12400),
        ("1.1M", 1_100_000),
        ("1.1K", 1100),
        ("3,208", 3208),
        ("7.9", 7),
        (0, 0),
        ("0", 0),
    ],
)
def test_parse_count_gives_whole_counts(raw: object, expected: int) -> None:
    result = parse_count(raw)
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
