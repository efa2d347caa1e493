"""The chatbot projection loads a page's schedules through the indexes, whatever the size of the table
and whether or not PostgreSQL has statistics for it. Written as `sample_id = ANY(...) OR
platform_creator_id = ANY(...)`, it read every schedule at every page on a table never analysed (a
server with autovacuum off): 3,927 executions over 4 ms in one benchmark with a 5-minute soak."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from events.chatbot_events import Scenario
from projections import chatbot_store
from tests.integration.plans import buffers, explained, explained_generic, positional

pytestmark = pytest.mark.integration

SAMPLES = 20_000
# A page's worth of keys: 30 samples (some with two scenarios), one of creator-7's samples besides, a
# creator of ten samples, and keys of nothing.
PAGE_SAMPLES = [f"sample-{n}" for n in range(1, 31)] + ["sample-71", "sample-none"]
PAGE_CREATORS = ["creator-7", "creator-none"]
FEW_BUFFERS = 250  # about three per key; a sequential scan reads the table's 300 and more


async def _fill(engine: AsyncEngine, analysed: bool) -> None:
    """A schedule per sample (a second scenario for every tenth), creators with ten samples each."""
    async with engine.begin() as conn:
        await conn.execute(text(f"""
            INSERT INTO projections.chatbot_schedules (sample_id, scenario, state, due_at, run_count, max_runs,
                region, platform_creator_id, updated_position)
            SELECT 'sample-' || n, scenario, 'done', now(), 1, 1, 'MX', 'creator-' || (n / 10), n
            FROM generate_series(1, {SAMPLES}) AS n,
                 unnest(CASE WHEN n % 10 = 0 THEN ARRAY['shipped', 'no_content'] ELSE ARRAY['shipped'] END) AS scenario
        """))  # fmt: skip
    if analysed:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE projections.chatbot_schedules"))


def _scans(plan: dict[str, Any]) -> list[str]:
    return [plan["Node Type"]] + [scan for child in plan.get("Plans", []) for scan in _scans(child)]


@pytest.mark.parametrize("analysed", [False, True], ids=["no statistics", "analysed"])
async def test_a_pages_schedules_are_looked_up_per_key(engine: AsyncEngine, analysed: bool) -> None:
    await _fill(engine, analysed)
    params = {"samples": PAGE_SAMPLES, "creators": PAGE_CREATORS}
    async with engine.connect() as conn:
        found = await chatbot_store.load_schedules(conn, PAGE_SAMPLES, PAGE_CREATORS)
        statement = chatbot_store._LOAD_SCHEDULES.text
        custom = await explained(conn, statement, params)
        literals = "'{" + ",".join(PAGE_SAMPLES) + "}', '{" + ",".join(PAGE_CREATORS) + "}'"
        generic = await explained_generic(conn, positional(statement, ["samples", "creators"]), "text[], text[]",
                                          literals)  # fmt: skip
    keys = {(schedule.sample_id, schedule.scenario) for schedule, _, _ in found}
    by_sample = {(f"sample-{n}", Scenario.SHIPPED) for n in (*range(1, 31), 71)} | {
        (f"sample-{n}", Scenario.NO_CONTENT) for n in (10, 20, 30)
    }
    by_creator = {(f"sample-{n}", Scenario.SHIPPED) for n in range(70, 80)} | {("sample-70", Scenario.NO_CONTENT)}
    assert keys == by_sample | by_creator
    assert len(found) == len(keys)  # sample-71's, found by its id and by its creator, comes once
    for plan in (custom, generic):  # for these keys, and as PostgreSQL may keep it for any
        assert "Seq Scan" not in _scans(plan), json.dumps(plan, indent=1)
        assert buffers(plan) < FEW_BUFFERS, json.dumps(plan, indent=1)
