"""Holding the projections back while the service ingests, for the ingest-only and catch-up-only figures.

The service has no setting that turns its projections off. It needs none: the runner takes each
projection's checkpoint row `FOR UPDATE SKIP LOCKED` and skips a projection whose row another replica
holds (service/runner.py). The benchmark holds every row in an open transaction, so the running
service records messages and projects nothing; releasing the rows lets it catch up on the backlog.
The holding transaction appends nothing, so it never holds back the read fence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from service.runner import lock_checkpoint


@asynccontextmanager
async def projections_held(engine: AsyncEngine, projections: Sequence[str]) -> AsyncIterator[None]:
    # The rows must exist, committed, before they are held: an uncommitted insert of ours would make
    # the runner wait on it (inside a transaction that holds the appender lock) instead of skipping.
    async with engine.begin() as conn:
        for name in projections:
            await lock_checkpoint(conn, name)
    async with engine.connect() as conn, conn.begin():
        for name in projections:
            while True:
                if await lock_checkpoint(conn, name) is not None:
                    break
                await asyncio.sleep(0.01)  # a page in progress: it ends soon
        yield
