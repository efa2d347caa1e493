"""Set-based writes: a page's rows go to the server as one JSON array, in one statement.

`executemany` sends one execution per row (the server plans, locks and logs each one); a page of
50 crawl rows became 50 statements per table. `jsonb_populate_recordset` turns the array into rows
typed by the table's own row type, so the insert is one statement whatever the page's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events import json_text


def insert_from_rows(table: str, columns: Sequence[str]) -> str:
    """`INSERT INTO table (columns) SELECT columns FROM` the rows passed as `:rows` (see `rows_param`);
    append an `ON CONFLICT` clause as needed. Rows must not repeat a conflict key within one call."""
    listed = ", ".join(columns)
    return (f"INSERT INTO {table} ({listed}) SELECT {listed} "
            f"FROM jsonb_populate_recordset(NULL::{table}, CAST(:rows AS jsonb))")  # fmt: skip


def rows_param(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The `:rows` parameter: datetimes in ISO 8601 and Decimals exactly, as PostgreSQL reads them into
    the table's columns; a jsonb column takes the value itself, not its JSON text."""
    return {"rows": json_text.dumps_rows(rows)}
