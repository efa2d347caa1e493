"""A page with a type-56 webhook looks up the samples and waiting webhooks it may join through their
indexes, whatever the size of the tables. Written as one WHERE with an OR of the two join keys, both
lookups read the whole table for every such page: 12 ms at 20,000 samples, and growing with every
sample a collector ever sent."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import TextClause

from projections import samples_store
from tests.integration.plans import positional

pytestmark = pytest.mark.integration

ROWS = 20_000
# Join keys of rows that exist, and of rows that do not.
PARAMS = {
    "apps": ["app-17", "app-none"],
    "pids": ["product-3", "product-none"],
    "cids": ["creator-3", "creator-none"],
}


async def _fill(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"""
            INSERT INTO projections.samples (sample_id, region, platform_product_id, creator_key,
                platform_creator_id, application_id, first_seen_at, last_seen_at, fingerprint, last_event_position)
            SELECT 'sample-' || n, 'MX', 'product-' || n, 'creator-' || n, 'creator-' || n, 'app-' || n, now(), now(),
                   'f', n
            FROM generate_series(1, {ROWS}) AS n
        """))  # fmt: skip
        await conn.execute(text(f"""
            INSERT INTO projections.pending_webhooks (event_position, application_id, platform_product_id,
                                                      platform_creator_id, status, observed_at)
            SELECT n, 'app-' || n, 'product-' || n, 'creator-' || n, 'shipped', now()
            FROM generate_series(1, {ROWS}) AS n
        """))  # fmt: skip
        await conn.execute(text("ANALYZE projections.samples, projections.pending_webhooks"))


@pytest.mark.parametrize("statement", ["_LOAD_JOINED", "_LOAD_WAITING"])
async def test_the_join_lookups_of_a_webhook_read_through_the_indexes(engine: AsyncEngine, statement: str) -> None:
    await _fill(engine)
    query: TextClause = getattr(samples_store, statement)
    async with engine.connect() as conn:
        found = (await conn.execute(query, PARAMS)).all()
        custom = "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN {query.text}"), PARAMS))
        # A prepared statement (asyncpg prepares every statement) may be planned once for any parameters.
        await conn.execute(text("SET plan_cache_mode = force_generic_plan"))
        await conn.execute(text(f"PREPARE joined (text[], text[], text[]) AS {positional(query.text, list(PARAMS))}"))
        arrays = ", ".join("'{" + ",".join(values) + "}'" for values in PARAMS.values())  # EXECUTE takes no binds
        generic = "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN EXECUTE joined ({arrays})")))
    assert len(found) == 2  # sample or webhook 17 by application id, 3 by (product, creator)
    for plan in (custom, generic):
        assert "Seq Scan" not in plan, plan
