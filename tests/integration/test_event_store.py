"""The event store on real PostgreSQL: append-only, idempotent, and read without gaps under concurrency."""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.recorded import NewEvent, RecordedEvent
from service.eventstore import PageSize, StreamVersionConflict, append_events
from service.runner import apply_next_page, catch_up


def ping(n: int | str) -> NewEvent:
    return NewEvent(
        stream_id=f"ping-{uuid.uuid4()}",
        event_type="test.ping",
        data={"n": n},
        metadata={},
        dedupe_key=f"ping/{uuid.uuid4()}",
    )


class Collecting:
    """A projection that remembers the position of every event it was given."""

    name = "test_collecting"
    event_types = ("test.ping",)
    derives_events = False
    tables: Sequence[str] = ()

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.pages: list[int] = []  # events per page

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        self.seen.extend(e.position for e in events)
        self.pages.append(len(events))
        return ()


async def test_recorded_events_cannot_be_updated_deleted_or_truncated(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await append_events(conn, [ping(1)])
    for statement in (
        "UPDATE eventstore.events SET data = '{}'",
        "DELETE FROM eventstore.events",
        "TRUNCATE eventstore.events",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT data FROM eventstore.events"))).scalar_one() == {"n": 1}


async def test_append_is_idempotent_on_dedupe_key_and_event_id(engine: AsyncEngine) -> None:
    first = ping(1)
    async with engine.begin() as conn:
        assert await append_events(conn, [first, ping(2)]) == [True, True]
    same_message = NewEvent(
        stream_id="other", event_type="test.ping", data={}, metadata={}, dedupe_key=first.dedupe_key
    )
    async with engine.begin() as conn:
        assert await append_events(conn, [same_message, first, ping(3)]) == [False, False, True]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM eventstore.events"))).scalar_one() == 3


async def test_runner_waits_for_a_transaction_that_took_an_earlier_position(engine: AsyncEngine) -> None:
    """A commits after B although A took the lower position. A reader that remembered B's position would
    step over A for ever; the visibility fence holds B back until A is committed."""
    projection = Collecting()
    async with engine.connect() as slow:
        await slow.begin()
        await append_events(slow, [ping("a")])
        async with engine.begin() as fast:
            await append_events(fast, [ping("b")])
        await catch_up(engine, projection)
        assert projection.seen == [], "read past a transaction that was still open"
        await slow.commit()
    await catch_up(engine, projection)
    async with engine.connect() as conn:
        positions = (await conn.execute(text("SELECT position FROM eventstore.events"))).scalars().all()
    assert sorted(projection.seen) == sorted(positions)
    assert len(positions) == 2


async def test_concurrent_writers_never_make_the_runner_skip_or_repeat(engine: AsyncEngine) -> None:
    projection = Collecting()
    writers, batches, per_batch = 6, 15, 4
    done = asyncio.Event()

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(batches):
            async with engine.connect() as conn:
                await conn.begin()
                await append_events(conn, [ping(i) for i in range(per_batch)])
                await asyncio.sleep(rng.uniform(0, 0.02))  # commit late, in a random order
                await conn.commit()

    async def reader() -> None:
        while not done.is_set():
            await apply_next_page(engine, projection, PageSize(events=7))
            await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(seed) for seed in range(writers)))
    done.set()
    await reading
    await catch_up(engine, projection)
    assert len(projection.seen) == writers * batches * per_batch
    assert len(set(projection.seen)) == len(projection.seen), "an event was applied twice"


async def test_a_page_ends_at_its_stored_bytes_and_the_rest_is_read_next_not_skipped(engine: AsyncEngine) -> None:
    """A crawl batch can be thousands of rows: a page ends once its events hold `stored_bytes` of stored
    data, and a page cut short must not move the checkpoint past what it left for the next one."""
    bulky = [ping(secrets.token_hex(2000)) for _ in range(12)]  # 4,000 incompressible characters each
    async with engine.begin() as conn:
        await append_events(conn, bulky)
        await append_events(conn, [NewEvent(stream_id="other", event_type="test.other", data={}, metadata={})])
    projection = Collecting()
    assert await catch_up(engine, projection, PageSize(events=500, stored_bytes=10_000)) == 12
    assert projection.pages == [3, 3, 3, 3]  # the third event starts below 10,000 bytes, the fourth not
    one_by_one = Collecting()
    one_by_one.name = "test_collecting_one_by_one"
    assert await catch_up(engine, one_by_one, PageSize(events=500, stored_bytes=1)) == 12  # the first always goes
    assert one_by_one.pages == [1] * 12
    assert sorted(one_by_one.seen) == sorted(projection.seen) == sorted(set(projection.seen))


def _on(stream: str, n: int) -> NewEvent:
    return NewEvent(stream_id=stream, event_type="test.ping", data={"n": n}, metadata={})


async def _versions(engine: AsyncEngine, streams: Sequence[str]) -> list[tuple[str, int, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("""SELECT stream_id, stream_version, (data->>'n')::int FROM eventstore.events
                    WHERE stream_id = ANY(CAST(:streams AS text[])) ORDER BY position"""),
            {"streams": list(streams)},
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def test_stream_versions_go_on_from_each_streams_head_in_the_order_given(engine: AsyncEngine) -> None:
    a, b, c = (f"{name}-{uuid.uuid4()}" for name in "abc")
    async with engine.begin() as conn:
        assert await append_events(conn, [_on(a, 1), _on(b, 1), _on(a, 2)]) == [True, True, True]
    async with engine.begin() as conn:
        assert await append_events(conn, [_on(c, 1), _on(a, 3), _on(b, 2), _on(a, 4)]) == [True] * 4
    assert await _versions(engine, [a, b, c]) == [
        (a, 1, 1), (b, 1, 1), (a, 2, 2), (c, 1, 1), (a, 3, 3), (b, 2, 2), (a, 4, 4),
    ]  # fmt: skip


async def test_two_writers_racing_for_a_stream_version_one_is_told_to_retry(engine: AsyncEngine) -> None:
    """Both read the same head inside their INSERT; the second waits on the first's row and is refused."""
    stream = f"race-{uuid.uuid4()}"
    async with engine.connect() as first:
        await first.begin()
        await append_events(first, [_on(stream, 1)])
        async with engine.connect() as second:
            await second.begin()
            racing = asyncio.create_task(append_events(second, [_on(stream, 2)]))
            await asyncio.sleep(0.3)
            assert not racing.done(), "the second writer must wait for the first's version 1"
            await first.commit()
            with pytest.raises(StreamVersionConflict, match=f"stream {stream} moved on"):
                await racing
            await second.rollback()
    async with engine.begin() as conn:  # the retry the error asks for
        assert await append_events(conn, [_on(stream, 2)]) == [True]
    assert await _versions(engine, [stream]) == [(stream, 1, 1), (stream, 2, 2)]
