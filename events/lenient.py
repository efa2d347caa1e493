"""Lenient readers for the many shapes collectors send numbers and flags in.

Each returns None for a value it cannot read: an unreadable value is unknown, never zero and never a
reason to reject the row. Numbers are read by the conventions of the row's region ("1,2K" is 1200 in FR and
unreadable in US), and a number whose text could mean two different numbers is unknown too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# Regions whose TikTok Shop UI writes a decimal comma ("1,2K", "1.351,57 €"), grouping thousands with "." or a
# space. Explicit, because a region on the wrong side multiplies or divides its numbers by a thousand.
DECIMAL_COMMA_REGIONS = frozenset({"FR", "ES", "DE", "IT", "BR", "ID", "VN"})
# Regions that write a decimal point ("12.4K", "$1,351.57"), grouping thousands with ",". A region in neither table
# is read as if it were unknown: guessing its convention is how "1,2K" once became 12000.
DECIMAL_POINT_REGIONS = frozenset({"US", "GB", "IE", "MX", "TH", "MY", "PH", "SG", "JP"})

# Digits joined by single separators: a "." "," or space only counts when a digit follows it, so "1.2 mil" and
# "p... 597.30" end or start their number where the digits do.
_NUMBER = re.compile(r"-?[0-9](?:[0-9]|[., ](?=[0-9]))*")
_SEPARATOR = re.compile(r"[., ]")
# Digits, one decimal point, digits: read the same by the general rules below in a decimal-point region,
# and the commonest shape after plain digits, so it skips them.
_PLAIN_DECIMAL_POINT = re.compile(r"[0-9]+\.[0-9]+", re.ASCII)
# No-break, narrow no-break and thin spaces group thousands (fr-FR writes "12\u202f400"); a space never marks decimals.
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})
_SUFFIX = {"k": Decimal(1_000), "m": Decimal(1_000_000), "b": Decimal(1_000_000_000)}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


def clean_text(value: Any) -> str | None:
    """Strip; empty strings and non-scalars are unknown."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def parse_decimal(value: Any, region: str | None = None) -> Decimal | None:
    """A number written by the conventions of `region`, or None when the text does not say which number it is.

    Decimal point (US, MX, ...): `"12,400"`, `"12.4K"`, `"$1,351.57"`, `"p... 597.30"`. Decimal comma (FR, DE, ...):
    `"1,2K"`, `"1.351,57 €"`, `"12 400"`, `"1 234,5"`. Numbers passed as numbers are taken as they are.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    text = str(value).strip()
    # Unary plus rounds to the context's 28 digits, as the general rules' multiplication by the suffix does.
    if text.isascii() and text.isdigit():  # "853": the same number by every convention, and most counts
        return +Decimal(text)
    if _region_code(region) in DECIMAL_POINT_REGIONS and _PLAIN_DECIMAL_POINT.fullmatch(text):  # "0.67" in MX
        return +Decimal(text)
    return _read_text(text, region)


def _read_text(text: str, region: str | None) -> Decimal | None:
    """`parse_decimal` of a text, by the general rules (no shortcut)."""
    text = text.lower().replace("…", "...").translate(_SPACES)
    match = _NUMBER.search(text)
    if not match:
        return None
    number = _read_written_number(match.group(), _region_code(region))
    if number is None:
        return None
    return number * _multiplier(text[match.end() :])


def _region_code(region: str | None) -> str | None:
    code = (region or "").strip().upper()
    return code or None


def _read_written_number(written: str, region: str | None) -> Decimal | None:
    """`written` ("12,400", "1.351,57", "1 234,5") by the region's convention, or None when unsure which number.

    A known region decides. Without one (or one in neither table) a number with both "." and "," shows its
    writer's convention: the last mark is the decimal ("1,351.57", "1.351,57"). Otherwise it is read with a decimal
    point, the convention of the default region MX, unless a decimal comma would read it as a different number:
    "12,400" (12400 or 12.4) and "1.234" (1.234 or 1234) are unknown. A shape only a decimal comma can read ("1,2K")
    is unknown too: the region is what would say so, and the digits alone are the guess that once made it 12000.
    """
    if region in DECIMAL_COMMA_REGIONS:
        return _read_with_decimal_mark(written, ",")
    if region in DECIMAL_POINT_REGIONS:
        return _read_with_decimal_mark(written, ".")
    marks = [char for char in written if char in ".,"]
    if len(set(marks)) == 2:
        return _read_with_decimal_mark(written, marks[-1])
    as_decimal_point = _read_with_decimal_mark(written, ".")
    as_decimal_comma = _read_with_decimal_mark(written, ",")
    if as_decimal_comma is not None and as_decimal_comma != as_decimal_point:
        return None
    return as_decimal_point


def _read_with_decimal_mark(written: str, decimal_mark: str) -> Decimal | None:
    """`written` read with `decimal_mark`; a shape that breaks the convention is unknown, never a near guess.

    The decimal mark appears at most once with only digits after it; the whole part is grouped by a single kind of
    separator, in groups of exactly three digits after a first group of one to three that does not start with 0
    ("1,2" and "0.540" are never thousands groupings).
    """
    sign = "-" if written.startswith("-") else ""
    whole, has_fraction, fraction = written.lstrip("-").partition(decimal_mark)
    if has_fraction and not fraction.isdigit():
        return None
    if len(set(_SEPARATOR.findall(whole))) > 1:
        return None
    groups = _SEPARATOR.split(whole)
    if len(groups) > 1 and not _is_thousands_grouping(groups):
        return None
    return Decimal(sign + "".join(groups) + ("." + fraction if has_fraction else ""))


def _is_thousands_grouping(groups: list[str]) -> bool:
    first_group, *rest = groups
    return 1 <= len(first_group) <= 3 and not first_group.startswith("0") and all(len(group) == 3 for group in rest)


def _multiplier(after_number: str) -> Decimal:
    """Only a lone K/M/B right after the number scales it ("12.4K"); "1.2 mil" is not a million."""
    rest = after_number.replace(" ", "")
    if rest[:1] in _SUFFIX and not rest[1:2].isalpha():
        return _SUFFIX[rest[:1]]
    return Decimal(1)


def parse_count(value: Any, region: str | None = None) -> int | None:
    """A whole count: `"12.4K"` → 12400 (FR: `"12,4K"`); fractions are rounded down."""
    number = parse_decimal(value, region)
    return None if number is None else int(number)


def parse_rate(value: Any, region: str | None = None) -> Decimal | None:
    """A fraction: `"54%"` → 0.54, `"0.54"` → 0.54; a bare number above 1 (up to 100) is a percentage."""
    number = parse_decimal(value, region)
    if number is None:
        return None
    if (isinstance(value, str) and "%" in value) or Decimal(1) < number <= Decimal(100):
        number = number / Decimal(100)
    return number.normalize() if number != 0 else Decimal(0)


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = clean_text(value)
    if text is None:
        return None
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def parse_utc(value: Any) -> datetime | None:
    """Collector timestamps are UTC without a zone (`2026-04-20 03:15:42`); ISO 8601 is accepted too."""
    text = clean_text(value)
    if text is None:
        return None
    try:  # the collectors' form is ISO 8601 with a space; fromisoformat reads it ten times faster than strptime
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return _parse_other_forms(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_other_forms(text: str) -> datetime | None:
    """Slashes and unpadded fields (`2026/4/20 3:15:42`), which ISO 8601 does not allow."""
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
