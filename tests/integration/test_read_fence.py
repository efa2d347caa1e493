"""The read fence waits for transactions that append events, and only for them.

A long write in another database on the same server, or on another table of this one, used to stop
every projection: the fence was the oldest running transaction of the whole server. Appenders now
hold the appender lock from before their first write, and the fence is the oldest of them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.recorded import NewEvent, RecordedEvent
from service import eventstore
from service.eventstore import append_events, begin_appending
from service.runner import apply_next_page, catch_up
from tests.integration.test_event_store import Collecting, ping
from tests.support import projection_lag


async def test_a_long_write_in_another_database_does_not_hold_projections_back(
    engine: AsyncEngine, other_database: str
) -> None:
    other = await asyncpg.connect(other_database)
    try:
        foreign = other.transaction()
        await foreign.start()
        await other.execute("CREATE TABLE busy (n int); INSERT INTO busy VALUES (1)")  # holds a transaction id
        async with engine.begin() as conn:
            await append_events(conn, [ping(i) for i in range(5)])
        projection = Collecting()
        await catch_up(engine, projection)
        assert len(projection.seen) == 5, "the other database's transaction held the fence"
        assert await projection_lag(engine, projection) == 0
        await foreign.rollback()
    finally:
        await other.close()


async def test_a_long_write_to_another_table_of_this_database_does_not_hold_projections_back(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as busy:
        await busy.begin()
        await busy.execute(text("INSERT INTO projections.checkpoints (projection) VALUES ('not-an-appender')"))
        async with engine.begin() as conn:
            await append_events(conn, [ping(i) for i in range(5)])
        projection = Collecting()
        await catch_up(engine, projection)
        assert len(projection.seen) == 5
        await busy.rollback()


async def test_an_announced_appender_holds_the_fence_until_it_commits(engine: AsyncEngine) -> None:
    """The runner's and dispatcher's shape: announce, write elsewhere (the transaction id is taken
    now), append later. A reader must not pass that id while the transaction is open."""
    projection = Collecting()
    async with engine.connect() as slow:
        await slow.begin()
        await begin_appending(slow)
        await slow.execute(text("INSERT INTO projections.checkpoints (projection) VALUES ('slow-writer')"))
        async with engine.begin() as fast:
            await append_events(fast, [ping("fast")])
        await catch_up(engine, projection)
        assert projection.seen == [], "read past an appender that was still open"
        await append_events(slow, [ping("slow")])
        await slow.commit()
    await catch_up(engine, projection)
    assert len(projection.seen) == 2
    assert await projection_lag(engine, projection) == 0


async def test_a_transaction_that_wrote_before_announcing_itself_cannot_append(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(text("INSERT INTO projections.checkpoints (projection) VALUES ('sneaky')"))
        with pytest.raises(DBAPIError, match="wrote before taking the appender lock"):
            await append_events(conn, [ping("late")])
        await conn.rollback()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM eventstore.events"))).scalar_one() == 0


async def test_without_the_fence_a_late_commit_is_skipped_for_good(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gap tests in test_event_store.py must be able to fail: with the fence replaced by "everything
    committed so far", the late-commit scenario loses its event. If this ever stops losing it, the
    scenario no longer exercises the fence."""
    monkeypatch.setattr(eventstore, "_FENCE", text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))
    projection = Collecting()
    async with engine.connect() as slow:
        await slow.begin()
        await append_events(slow, [ping("a")])  # the earlier transaction id, committed last
        async with engine.begin() as fast:
            await append_events(fast, [ping("b")])
        await catch_up(engine, projection)
        assert len(projection.seen) == 1, "without the fence the reader takes b while a is open"
        await slow.commit()
    await catch_up(engine, projection)
    assert len(projection.seen) == 1, "a was stepped over for good: the loss the fence prevents"
    assert await projection_lag(engine, projection) == 0, "and silently: a sits behind the checkpoint"


class Blocking:
    """A projection whose page stays open (its transaction holding the checkpoint's row lock, so a
    transaction id) until released."""

    name = "test_blocking"
    event_types = ("test.block",)
    tables: Sequence[str] = ()

    def __init__(self, derives_events: bool) -> None:
        self.derives_events = derives_events
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        self.entered.set()
        await self.release.wait()
        return ()


@pytest.mark.parametrize(("derives_events", "seen_meanwhile"), [(True, 0), (False, 1)],
                         ids=["deriving-holds-the-fence", "non-deriving-holds-nobody-back"])  # fmt: skip
async def test_only_a_projection_that_derives_events_holds_other_readers_back(
    engine: AsyncEngine, derives_events: bool, seen_meanwhile: int
) -> None:
    blocking, reader = Blocking(derives_events), Collecting()
    async with engine.begin() as conn:
        await append_events(conn, [NewEvent(stream_id=f"block-{uuid.uuid4()}", event_type="test.block", data={},
                                            metadata={})])  # fmt: skip
    page = asyncio.create_task(apply_next_page(engine, blocking))
    await asyncio.wait_for(blocking.entered.wait(), timeout=10)
    try:
        async with engine.begin() as conn:
            await append_events(conn, [ping("meanwhile")])
        await catch_up(engine, reader)
        assert len(reader.seen) == seen_meanwhile
    finally:
        blocking.release.set()
        assert await page == 1
    await catch_up(engine, reader)
    assert len(reader.seen) == 1


class Undeclared:
    name = "test_undeclared"
    event_types = ("test.ping",)
    derives_events = False
    tables: Sequence[str] = ()

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        """Derives from the second ping only: one event at a time, the first would pass."""
        if any(event.data["n"] == 2 for event in events):
            return [NewEvent(stream_id="derived", event_type="test.derived", data={}, metadata={})]
        return ()


async def test_a_projection_that_says_it_derives_nothing_cannot_append_nor_quarantine_its_events(
    engine: AsyncEngine,
) -> None:
    """The projection's code is at fault: the page fails as a whole, every time, and nothing is set aside."""
    async with engine.begin() as conn:
        await append_events(conn, [ping(1), ping(2)])
    for _ in range(2):
        with pytest.raises(TypeError, match="projection test_undeclared derived events but says it derives none"):
            await apply_next_page(engine, Undeclared())
    async with engine.connect() as conn:
        quarantined = await conn.execute(
            text("SELECT count(*) FROM projections.quarantined_events WHERE projection = 'test_undeclared'")
        )
        assert quarantined.scalar_one() == 0
