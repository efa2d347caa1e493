"""Waiting for the service to reach a point, and saying when it got there (monotonic seconds). "Settled"
is the fault suite's: every message recorded, every projection at the head, nothing in the outbox,
nothing due (tests/faults/settling.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.log_queries import recorded_since
from service.progress import Folding
from tests.faults.settling import outstanding_work

POLL_SECONDS = 0.1
ALL = "all"  # the key of projections_at_head's answer for "every projection at once"


async def _until(what: str, reached: Callable[[], Awaitable[bool]], within: float,
                 detail: Callable[[], Awaitable[object]]) -> float:  # fmt: skip
    deadline = time.monotonic() + within
    while not await reached():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {within:.0f}s: {await detail()}")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic()


async def recorded(engine: AsyncEngine, since: int, expected: int, within: float) -> float:
    """When all `expected` messages sent after `since` were in the log."""

    async def count() -> int:
        return await recorded_since(engine, since)

    async def all_in() -> bool:
        return await count() >= expected

    return await _until(f"{expected} messages recorded", all_in, within, count)


async def projections_at_head(engine: AsyncEngine, projections: Sequence[Folding], within: float) -> dict[str, float]:
    """When every projection was at the head at once, and when each one got there for good: a projection
    can touch the head and fall behind again while the one before it still derives events for it."""
    since: dict[str, float] = {}

    async def at_head() -> bool:
        outstanding = await outstanding_work(engine, projections)
        now = time.monotonic()
        for name, lag in outstanding.lag.items():
            if lag:
                since.pop(name, None)
            else:
                since.setdefault(name, now)
        return outstanding.projections_at_head

    done = await _until("projections at the head", at_head, within, lambda: outstanding_work(engine, projections))
    return {**since, ALL: done}


async def settled(engine: AsyncEngine, projections: Sequence[Folding], since: int, expected: int,
                  within: float) -> float:  # fmt: skip
    all_recorded = False

    async def done() -> bool:
        # Counted until all are in, then no more: the count reads every event since the workload
        # began, about 10 ms of the server's CPU at each poll by the end of (a), taken from the service.
        nonlocal all_recorded
        all_recorded = all_recorded or await recorded_since(engine, since) >= expected
        return all_recorded and (await outstanding_work(engine, projections)).idle

    async def detail() -> object:
        return await recorded_since(engine, since), await outstanding_work(engine, projections)

    return await _until("settled", done, within, detail)
