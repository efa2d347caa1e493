"""`sample-ledger health`: is the broker reachable and consumed, the database reachable, projections caught up?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika

from handlers.topology import build_topology
from service.database import create_engine
from service.errors import describe
from service.progress import LAG_COUNT_LIMIT, Folding, projection_progress
from service.read_models import all_projections
from service.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


async def check_broker(settings: Settings) -> list[Check]:
    """Every inbound queue exists and has at least one consumer (some replica is taking messages)."""
    try:
        connection = await aio_pika.connect(settings.amqp_url, timeout=5)
    except Exception as exc:
        return [Check("broker", False, f"unreachable: {describe(exc)}")]
    checks = [Check("broker", True, "reachable")]
    try:
        for route in build_topology(settings.amqp_prefix).routes.values():
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(route.queue.name, passive=True)
                consumers = queue.declaration_result.consumer_count or 0
                checks.append(
                    Check(
                        f"queue {route.queue.name}",
                        consumers > 0,
                        f"{consumers} consumer(s), {queue.declaration_result.message_count} waiting",
                    )
                )
            except aio_pika.exceptions.ChannelClosed:
                checks.append(Check(f"queue {route.queue.name}", False, "missing (is the service running?)"))
            finally:
                if not channel.is_closed:
                    await channel.close()
    finally:
        await connection.close()
    return checks


async def check_database(settings: Settings, projections: Sequence[Folding], max_lag: int) -> list[Check]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            checks = [Check("database", True, "reachable")]
            # The same count `status` shows: events behind in the runner's own (transaction, position) order.
            for row in await projection_progress(conn, projections):
                lag = int(row["lag"])
                # The count stops at LAG_COUNT_LIMIT: reaching it means "at least that far behind".
                ok = lag <= max_lag and lag < LAG_COUNT_LIMIT
                checks.append(Check(f"projection {row['name']}", ok, f"{lag} event(s) behind (limit {max_lag})"))
            return checks
    except Exception as exc:
        return [Check("database", False, f"unreachable: {describe(exc)}")]
    finally:
        await engine.dispose()


async def health(settings: Settings, max_lag: int) -> list[Check]:
    return [*await check_broker(settings), *await check_database(settings, all_projections(settings), max_lag)]
