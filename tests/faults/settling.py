"""When the service has taken everything and finished with it: every inbound queue consumed, every
projection at the head of the log, no chatbot task waiting in the outbox and no schedule due.

Shared by the fault suite (`Rig`) and the benchmark (`bench/`), so both mean the same by "settled".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.progress import Folding, projection_progress

_UNPUBLISHED = text("SELECT count(*) FROM eventstore.chatbot_outbox WHERE published_at IS NULL")
_DUE = text("SELECT count(*) FROM projections.chatbot_schedules WHERE state = 'pending' AND due_at <= now()")


async def wait_for_consumers(amqp: aio_pika.abc.AbstractConnection, queues: Sequence[str], timeout: float = 60) -> None:
    """Until every queue has a consumer: declared, bound and consumed, so nothing a publisher sends
    from now on is unroutable."""
    deadline = time.monotonic() + timeout
    while True:
        channel = await amqp.channel()
        try:
            consumers = [
                (await channel.declare_queue(name, passive=True)).declaration_result.consumer_count for name in queues
            ]
            if all(consumers):
                return
        except aio_pika.exceptions.ChannelClosed:
            pass
        finally:
            if not channel.is_closed:
                await channel.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"the service did not start consuming within {timeout:.0f}s")
        await asyncio.sleep(0.3)


@dataclass(frozen=True)
class Outstanding:
    """What the service still has to do with what it recorded."""

    lag: dict[str, int]  # events of its types not yet applied, per projection
    unpublished: int  # outbox rows not yet confirmed by the broker
    due: int  # pending schedules whose time has come

    @property
    def projections_at_head(self) -> bool:
        return not any(self.lag.values())

    @property
    def idle(self) -> bool:
        return self.projections_at_head and self.unpublished == 0 and self.due == 0


async def outstanding_work(engine: AsyncEngine, projections: Sequence[Folding]) -> Outstanding:
    async with engine.connect() as conn:
        progress = await projection_progress(conn, projections)
        unpublished = (await conn.execute(_UNPUBLISHED)).scalar_one()
        due = (await conn.execute(_DUE)).scalar_one()
    return Outstanding({p["name"]: p["lag"] for p in progress}, unpublished, due)
