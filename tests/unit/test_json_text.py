"""The JSON text the service writes to PostgreSQL and reads back: the fast path must give the values
the standard library gives, and fall back to it where it would not."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import json_text
from events.statuses import Status


def standard(value: Any) -> str:
    """What the service wrote before: the standard library's compact form."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@dataclass(frozen=True)
class Point:
    x: int


VALUES = [
    {"at": datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC), "day": date(2026, 4, 20)},  # str(): PostgreSQL's form
    {"amount": Decimal("12.50"), "id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
    {"status": Status.SHIPPED, "names": ["Lupita", "São Paulo", "ñandú", "🙂"]},
    {"big": 10**30, "negative": -(10**25)},  # past 64 bits: the standard library's path
    {"lone": "\ud800"},  # a lone surrogate, which orjson refuses
    {1: "int key", "nested": {"deep": [1, 2.5, None, True]}},
    {"point": Point(3)},  # anything else: its str()
    nested(300),  # deeper than orjson goes
]


@pytest.mark.parametrize("value", VALUES)
def test_written_values_are_the_standard_librarys(value: Any) -> None:
    assert json.loads(json_text.dumps(value)) == json.loads(standard(value))


def test_datetimes_are_written_as_postgresql_reads_them_not_as_iso_with_a_t() -> None:
    assert json_text.dumps({"at": datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)}) == '{"at":"2026-04-20 03:15:42+00:00"}'


@pytest.mark.parametrize("value", VALUES)
def test_rows_are_written_as_any_value_is_but_for_their_times(value: Any) -> None:
    if isinstance(value, dict) and "at" in value:
        return  # the times: below
    assert json.loads(json_text.dumps_rows(value)) == json.loads(standard(value))


@pytest.mark.parametrize("moment", [datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC),
                                    datetime(2026, 4, 20, 3, 15, 42, 123456, tzinfo=UTC),
                                    datetime(2026, 4, 20, 3, 15, 42)])  # fmt: skip
def test_the_times_of_rows_are_iso_8601_for_postgresql_to_parse_into_their_columns(moment: datetime) -> None:
    written = json.loads(json_text.dumps_rows([{"at": moment, "n": 10**30}]))  # the standard library's path too
    assert datetime.fromisoformat(written[0]["at"]) == moment
    assert datetime.fromisoformat(json.loads(json_text.dumps_rows([{"at": moment}]))[0]["at"]) == moment


def test_non_ascii_is_kept_as_it_is() -> None:
    assert json_text.dumps({"city": "São Paulo"}) == '{"city":"São Paulo"}'


@pytest.mark.parametrize("text", ["123456789012345678901234567890", '{"id": 18446744073709551616}',
                                  '{"id": -99999999999999999999999}', '{"id": -9300000000000000000}',
                                  '[-9223372036854775809]'])  # fmt: skip
def test_integers_past_64_bits_are_read_exactly(text: str) -> None:
    assert json_text.loads(text) == json.loads(text)
    assert "e" not in repr(json_text.loads(text))  # not a float


@given(st.integers(min_value=-(10**21), max_value=10**21))
def test_every_integer_reads_back_exactly(number: int) -> None:
    assert json_text.loads(f'{{"n": {number}}}') == {"n": number}
    assert type(json_text.loads(str(number))) is int


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_reads_back_as_the_standard_library_reads_it(value: Any) -> None:
    text = standard(value)
    assert json_text.loads(text) == json.loads(text)
    assert json.loads(json_text.dumps(value)) == json.loads(text)
