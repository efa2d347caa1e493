"""The tables analysts read: documented, readable by `ledger_analyst`, and not writable by it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import rows


async def test_every_table_and_column_carries_a_comment(engine: AsyncEngine) -> None:
    missing = await rows(
        engine,
        """
        SELECT c.table_schema || '.' || c.table_name || '.' || c.column_name AS what
        FROM information_schema.columns c
        JOIN pg_class t ON t.relname = c.table_name
        JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = c.table_schema
        WHERE c.table_schema IN ('eventstore', 'projections')
          AND col_description(t.oid, c.ordinal_position) IS NULL
        UNION ALL
        SELECT n.nspname || '.' || t.relname FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname IN ('eventstore', 'projections') AND t.relkind = 'r' AND obj_description(t.oid) IS NULL""",
    )
    assert missing == []


async def test_analyst_role_reads_everything_and_changes_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL ROLE ledger_analyst"))
        await conn.execute(text("SELECT count(*) FROM eventstore.events"))
        await conn.execute(text("SELECT count(*) FROM projections.samples"))
    for statement in (
        "DELETE FROM projections.samples",
        "INSERT INTO projections.checkpoints (projection) VALUES ('x')",
    ):
        async with engine.connect() as conn:
            await conn.execute(text("SET ROLE ledger_analyst"))
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text(statement))
            await conn.rollback()
