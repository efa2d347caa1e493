"""JSON text as the service writes it to PostgreSQL and reads it back: orjson, which is several times
faster than the standard library, wherever it gives the same values; the standard library where it
would not.

Writing: compact, non-ASCII kept as it is, and `str()` of what JSON has no form for (datetimes as
PostgreSQL reads them, '2026-04-20 03:15:42+00:00'; Decimals exactly). orjson refuses integers past
64 bits, lone surrogates and nesting past 254 levels; those values take the standard library's path.
Where the two differ on values nothing here writes, orjson's form is kept: a plain `Enum` by its
value, a float subclass as text, NaN and infinities as null (PostgreSQL refused the standard
library's `NaN`), and dict keys that are datetimes, UUIDs or enums as strings (it raised).

Reading: orjson turns an integer past 64 bits into a float, silently, so text with a run of 20 digits,
or a minus sign and 19 (below -2**63), is read by the standard library, which keeps every integer
exact (an id sent as a JSON number must stay the id it was). The runs are looked for with
`bytes.translate` and a substring search: a regular expression took five times as long as parsing a
page of 19-digit ids.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Datetimes through `default=str` as the standard library writes them; dataclasses too, not as objects.
_WRITE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
# Digits become "0", minus signs stay, everything else is a space: a number orjson could not read exactly
# shows as 20 zeros (past 2**64 - 1) or as a minus and 19 zeros (below -2**63, which 19 digits can be).
_DIGITS_AS_ZEROS = bytes(
    ord("0") if ord("0") <= b <= ord("9") else b if b == ord("-") else ord(" ") for b in range(256)
)
_PAST_64_BITS = (b"0" * 20, b"-" + b"0" * 19)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=_WRITE).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


# Rows for `jsonb_populate_recordset` (projections/bulk_sql.py): PostgreSQL parses each time into its
# column, so orjson writes times itself, in ISO 8601 ('2026-04-20T03:15:42+00:00'): a `default=str`
# call for each was most of the cost of writing a page's rows. A time inside a jsonb column would keep
# that form too, so rows carry none there (the samples' fact times are text already).
_WRITE_ROWS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


def dumps_rows(rows: Any) -> str:
    """`dumps`, with times in ISO 8601 as orjson writes them: for values PostgreSQL parses by column type.

    orjson writes a zone's offset to the minute: right for the rows' times, which are all UTC (the
    lenient readers and the events' own times), wrong by the seconds of an offset such as a local mean
    time before 1900's, which no row carries."""
    try:
        return orjson.dumps(rows, default=str, option=_WRITE_ROWS).decode()
    except TypeError:
        return dumps(rows)


def loads(text: str) -> Any:
    raw = text.encode()
    shape = raw.translate(_DIGITS_AS_ZEROS)
    if any(run in shape for run in _PAST_64_BITS):
        return json.loads(text)
    return orjson.loads(raw)
