"""Events are read in (transaction_id, position) order as numbers, also where transaction ids gain a digit.

A reader that ordered transaction ids as text put 10014 before 9902: a page then ended on the wrong
event and the checkpoint jumped over events that were never applied. These tests write events whose
transaction ids straddle a power of ten (explicit ids below the current fence, the column only has a
default), shuffled so that positions disagree with transaction order, and read them in pages.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.recorded import NewEvent, RecordedEvent
from service.eventstore import _READ, PageSize, append_events
from service.runner import apply_next_page
from tests.integration.test_event_store import ping
from tests.support import projection_lag

EVENTS_EACH_SIDE = 60


class Collecting:
    name = "test_order"
    event_types = ("test.ping",)
    derives_events = False
    tables: Sequence[str] = ()

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        self.seen.extend((e.transaction_id, e.position) for e in events)
        return ()


async def _fence(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))).scalar_one())


async def _burn_transaction_ids(engine: AsyncEngine, count: int) -> None:
    """Move the server's transaction counter on by `count`: a procedure that commits in a loop."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(
            text("""
            CREATE PROCEDURE burn_xids(n int) LANGUAGE plpgsql AS $$
            BEGIN FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$""")
        )
        await conn.execute(text("CALL burn_xids(:n)"), {"n": count})


async def _power_of_ten_below_the_fence(engine: AsyncEngine) -> int:
    """The largest power of ten (at least 100) with room for every test event below the fence."""
    fence = await _fence(engine)
    if fence <= 100 + EVENTS_EACH_SIDE:
        await _burn_transaction_ids(engine, 100 + EVENTS_EACH_SIDE + 1 - fence)
        fence = await _fence(engine)
    power = 100
    while power * 10 + EVENTS_EACH_SIDE < fence:
        power *= 10
    return power


async def _insert_straddling(engine: AsyncEngine, power: int, seed: int) -> list[tuple[int, int]]:
    """Events with transaction ids power-60 .. power+59, inserted in a shuffled order; their
    (transaction_id, position) pairs in the order a correct reader must apply them."""
    ids = list(range(power - EVENTS_EACH_SIDE, power + EVENTS_EACH_SIDE))
    random.Random(seed).shuffle(ids)
    async with engine.begin() as conn:
        rows = await conn.execute(
            text("""
            INSERT INTO eventstore.events
                (event_id, stream_id, stream_version, event_type, event_version, data, metadata, dedupe_key,
                 transaction_id)
            SELECT gen_random_uuid(), 'order-' || t.ord, 1, 'test.ping', 1, CAST(:data AS jsonb), '{}',
                   'order/' || t.ord || '/' || :run, CAST(t.txid::text AS xid8)
            FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS t(txid, ord)
            ORDER BY t.ord
            RETURNING transaction_id::text AS txid_text, position"""),
            {"ids": ids, "data": json.dumps({"n": 0}), "run": uuid.uuid4().hex},
        )
        written = [(int(txid), position) for txid, position in rows]
    return sorted(written)


@pytest.mark.parametrize("page_size", [7, 500], ids=["pages-smaller-than-backlog", "one-page"])
async def test_ids_that_gain_a_digit_are_applied_once_in_numeric_order(engine: AsyncEngine, page_size: int) -> None:
    power = await _power_of_ten_below_the_fence(engine)
    expected = await _insert_straddling(engine, power, seed=page_size)
    assert len(str(expected[0][0])) < len(str(expected[-1][0])), "the test ids must straddle a power of ten"

    projection = Collecting()
    while await apply_next_page(engine, projection, PageSize(events=page_size)):
        pass

    assert projection.seen == expected, "events skipped, repeated or out of (transaction_id, position) order"
    assert await projection_lag(engine, projection) == 0

    # Events written afterwards by ordinary transactions (higher ids) are read from the same checkpoint.
    async with engine.begin() as conn:
        await append_events(conn, [ping("late")])
    while await apply_next_page(engine, projection, PageSize(events=page_size)):
        pass
    assert len(projection.seen) == len(expected) + 1
    assert projection.seen[-1][0] > expected[-1][0]
    assert await projection_lag(engine, projection) == 0


async def test_a_page_and_the_last_visible_event_are_found_through_the_index(engine: AsyncEngine) -> None:
    """The read runs for every page, idle or not, and also finds the last event visible below the
    fence (of any type): neither part may scan or sort the whole log."""
    async with engine.begin() as conn:
        for _ in range(4):
            await append_events(conn, [ping(i) for i in range(500)])
        await conn.execute(text("ANALYZE eventstore.events"))
    fence = await _fence(engine)
    params = {"txid": 0, "position": 0, "fence": fence, "types": ["test.ping"], "limit": 500, "max_bytes": 1 << 20}
    async with engine.connect() as conn:
        plan = "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN {_READ.text}"), params))
    assert "Seq Scan" not in plan, plan
    assert plan.count("events_transaction_position") == 2, plan  # the page, and the last visible event
    assert "Scan Backward using events_transaction_position" in plan, plan  # from the top, one row
    sorted_keys = [line for line in plan.splitlines() if "Sort Key" in line]
    assert all("w.transaction_id" in line for line in sorted_keys), plan  # only the page's rows, once read
