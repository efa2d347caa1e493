"""Lenient readers for the many shapes collectors send numbers and flags in.

Each returns None for a value it cannot read: an unreadable value is unknown, never zero and never a
reason to reject the row.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_SUFFIX = {"k": Decimal(1_000), "m": Decimal(1_000_000), "b": Decimal(1_000_000_000)}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


def clean_text(value: Any) -> str | None:
    """Strip; empty strings and non-scalars are unknown."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def parse_decimal(value: Any) -> Decimal | None:
    """`12400`, `"12,400"`, `"12.4K"`, `"1.1M"`, `"$1,351.57"`, `"p... 597.30"` → Decimal."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    text = str(value).strip().lower().replace(",", "").replace("…", "...")
    match = _NUMBER.search(text.replace(" ", ""))
    if not match:
        return None
    try:
        number = Decimal(match.group())
    except InvalidOperation:  # pragma: no cover - the regex only admits valid literals
        return None
    # Only a lone K/M/B right after the number scales it ("12.4K"); "1.2 mil" is not a million.
    rest = text.replace(" ", "")[match.end() :]
    if rest[:1] in _SUFFIX and not rest[1:2].isalpha():
        number *= _SUFFIX[rest[:1]]
    return number


def parse_count(value: Any) -> int | None:
    """A whole count: `"12.4K"` → 12400; fractions are rounded down."""
    number = parse_decimal(value)
    return None if number is None else int(number)


def parse_rate(value: Any) -> Decimal | None:
    """A fraction: `"54%"` → 0.54, `"0.54"` → 0.54; a bare number above 1 (up to 100) is a percentage."""
    number = parse_decimal(value)
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
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
