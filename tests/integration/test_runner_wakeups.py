"""Who wakes which projection: a page read costs a transaction of round trips even when it finds
nothing, so the runner reads only when events a projection folds were appended (or at its idle poll),
and not again after a page that was the last below the fence."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.recorded import NewEvent, RecordedEvent
from service import runner
from service.eventstore import PageSize, append_events
from service.recorder import Recorder
from service.runner import PageApplied, Projection, ProjectionRunner
from tests.support import eventually

NO_IDLE_POLL = 600.0  # seconds: in these tests, only a nudge wakes a projection


def _event(event_type: str, n: int | str, dedupe_key: str | None = None) -> NewEvent:
    return NewEvent(stream_id=f"{event_type}-{uuid.uuid4()}", event_type=event_type, data={"n": n}, metadata={},
                    dedupe_key=dedupe_key)  # fmt: skip


class Folds:
    """Remembers the events of its type it was given; `derives`: a type it derives one event of from each."""

    tables: Sequence[str] = ()

    def __init__(self, event_type: str, derives: str | None = None) -> None:
        self.name = f"test_{event_type.removeprefix('test.')}s_{uuid.uuid4().hex[:6]}"
        self.event_types = (event_type,)
        self.derives_events = derives is not None
        self._derives = derives
        self.seen: list[int] = []

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        self.seen.extend(e.position for e in events)
        if self._derives is None:
            return ()
        return [NewEvent(stream_id=f"{self._derives}-{e.event_id}", event_type=self._derives, data={}, metadata={},
                         event_id=uuid.uuid5(e.event_id, self._derives)) for e in events]  # fmt: skip


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Page reads per projection, empty ones included."""
    counted: collections.Counter[str] = collections.Counter()
    real = runner.apply_a_page

    async def counting(engine: AsyncEngine, projection: Projection, *args: object) -> PageApplied | None:
        counted[projection.name] += 1
        return await real(engine, projection, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "apply_a_page", counting)
    return counted


@asynccontextmanager
async def running(engine: AsyncEngine, projections: Sequence[Projection]) -> AsyncIterator[ProjectionRunner]:
    projection_runner = ProjectionRunner(engine, projections, PageSize(), idle_poll_seconds=NO_IDLE_POLL)
    task = asyncio.create_task(projection_runner.run())
    try:
        yield projection_runner
    finally:
        projection_runner.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_a_nudge_wakes_the_projections_that_fold_what_was_appended_and_no_other(
    engine: AsyncEngine, reads: collections.Counter[str]
) -> None:
    pings, pongs, bystander = Folds("test.ping", derives="test.pong"), Folds("test.pong"), Folds("test.other")
    async with running(engine, [pings, pongs, bystander]) as projection_runner:
        names = (pings.name, pongs.name, bystander.name)
        await eventually(lambda: _counts(reads, names), lambda counts: counts == (1, 1, 1))  # one read at start

        async with engine.begin() as conn:
            await append_events(conn, [_event("test.ping", 1), _event("test.ping", 2)])
        projection_runner.nudge({"test.ping"})

        # The pongs the pings projection derived wake the pongs projection: its idle poll is minutes away.
        await eventually(lambda: _seen(pings, pongs), lambda seen: seen == (2, 2), timeout=10)
        await asyncio.sleep(0.5)
        # One page each, read once: no second read after a page that was the last below the fence, and
        # nothing for the projection that folds neither.
        assert await _counts(reads, names) == (2, 2, 1)


async def test_the_recorder_names_only_the_types_it_recorded_now(engine: AsyncEngine) -> None:
    told: list[frozenset[str]] = []
    recorder = Recorder(engine, on_committed=told.append)
    recorder.start()
    try:
        key = f"once/{uuid.uuid4()}"
        assert await recorder.record(_event("test.ping", 1, dedupe_key=key)) is True
        assert await recorder.record(_event("test.ping", 1, dedupe_key=key)) is False  # a redelivery
        assert await recorder.record(_event("test.other", 2)) is True
    finally:
        await recorder.stop()
    assert told == [frozenset({"test.ping"}), frozenset({"test.other"})]


async def _counts(reads: collections.Counter[str], names: Sequence[str]) -> tuple[int, ...]:
    return tuple(reads[name] for name in names)


async def _seen(pings: Folds, pongs: Folds) -> tuple[int, int]:
    return len(pings.seen), len(pongs.seen)
