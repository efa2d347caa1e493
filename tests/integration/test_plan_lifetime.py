"""A statement's plan does not outlive its connection's plan lifetime. asyncpg prepares every statement
once per connection, and after five executions PostgreSQL may keep one plan for it, made again only when
a table it reads is analysed: a plan made while the table was empty can be a sequential scan that goes
on reading the whole table as it grows (the benchmark found the chatbot projection reading every
schedule at every page that way, on a server with autovacuum off, as this one may be)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from projections.samples_store import load_states
from service.database import create_engine

pytestmark = pytest.mark.integration

ROWS = 20_000
# Long enough for the steps before the premise's check to run on the first connection on a loaded
# machine (they take about half a second), short enough to wait out.
LIFETIME_SECONDS = 4.0
WANTED = ["sample-3", "sample-4", "sample-none"]
_SEQUENTIALLY_READ = text(
    "SELECT coalesce(seq_tup_read, 0) FROM pg_stat_xact_user_tables WHERE relid = 'projections.samples'::regclass"
)


async def _rows_read_by_sequential_scans(engine: AsyncEngine) -> int:
    """Load three samples' states, as a page does; the rows of the table that sequential scans read, as
    this connection's server process counts them (this transaction's, and any of its earlier ones not
    yet reported to the statistics: a new connection starts from zero)."""
    async with engine.begin() as conn:
        states = await load_states(conn, WANTED)
        read = (await conn.execute(_SEQUENTIALLY_READ)).scalar_one()
    assert set(states) <= {"sample-3", "sample-4"}
    return int(read)


async def test_a_plan_made_on_an_empty_table_is_made_again_once_the_connection_is_old(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, plan_lifetime_seconds=LIFETIME_SECONDS)
    try:
        for _ in range(8):  # past the five executions after which one plan may be kept
            await _rows_read_by_sequential_scans(engine)
        async with engine.begin() as conn:
            await conn.execute(text(f"""
                INSERT INTO projections.samples (sample_id, region, platform_product_id, creator_key, first_seen_at,
                                                 last_seen_at, fingerprint, last_event_position)
                SELECT 'sample-' || n, 'MX', 'product-' || n, 'creator-' || n, now(), now(), 'f', n
                FROM generate_series(1, {ROWS}) AS n
            """))  # fmt: skip
        # The premise: the connection's plan, made on the empty table, scans all of it now.
        assert await _rows_read_by_sequential_scans(engine) >= ROWS
        await asyncio.sleep(LIFETIME_SECONDS + 1)
        # The next checkout replaces the connection; the statement is planned for the table as it is.
        assert await _rows_read_by_sequential_scans(engine) == 0
    finally:
        await engine.dispose()
