"""`sample-ledger demo`: a newcomer's first look. Publish the bundled example messages to a running
service, wait until it has taken them, and show what came out and where to look next.

Every message keeps a fixed message id (`demo-<file stem>`), so running the demo again records
nothing twice; only the invalid message is dead-lettered again, as any resent poison would be.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractConnection
from aiormq.exceptions import ChannelNotFoundEntity
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from events.sample_events import CrawlBatchRecorded
from handlers.topology import Route, build_topology
from projections.crawl_reading import read_crawl_batch
from service.database import create_engine, redacted
from service.ops.dead_letters import DeadLetter, peek_dead_letters
from service.ops.demo_summary import summary_lines
from service.ops.failures import CommandFailed
from service.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INVALID_ID = "demo-invalid"
POLL_SECONDS = 0.25
# How far into the dead-letter queue the demo looks for its own invalid message.
DEAD_LETTER_SCAN = 1000

BATCHES_TAKEN = text("SELECT count(*) FROM projections.crawl_batches WHERE message_id = ANY(:ids)")
# Projections other than the samples one (chatbot schedules) follow a moment later.
CAUGHT_UP = text("""
    SELECT coalesce((SELECT min(position) FROM projections.checkpoints), 0)
        >= coalesce((SELECT max(position) FROM eventstore.events), 0)
""")


@dataclass(frozen=True)
class DemoMessage:
    message_id: str
    body: bytes
    content_type: str = "application/json"


def example_batches(directory: Path = EXAMPLES) -> list[DemoMessage]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise CommandFailed(f"no example messages in {directory}: run the demo from the project's checkout")
    return [DemoMessage(f"demo-{path.stem}", path.read_bytes()) for path in files]


def sample_ids_of(batches: list[DemoMessage]) -> list[str]:
    """The samples the batches touch, computed as the service does, to show only the demo's rows."""
    now = datetime.now(UTC)
    readings = [read_crawl_batch(CrawlBatchRecorded.from_data(json.loads(b.body)), now) for b in batches]
    return sorted({o.sample_id for reading in readings for o in reading.observations})


async def _require_consumer(connection: AbstractConnection, route: Route) -> None:
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(route.queue.name, passive=True)
        consumers = queue.declaration_result.consumer_count or 0
    except ChannelNotFoundEntity:
        consumers = 0  # the service creates its queues when it starts, so it never ran here
    if consumers == 0:
        raise CommandFailed(
            f"no service is consuming {route.queue.name}: start it with `sample-ledger run` (or `make run`) first"
        )


async def publish_demo(settings: Settings, messages: list[DemoMessage]) -> Route:
    """Publish like a collector: persistent, confirmed, refused when no queue would take it."""
    route = build_topology(settings.amqp_prefix).routes["samples.crawled"]
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    try:
        await _require_consumer(connection, route)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(route.exchange.name, ensure=False)
        for m in messages:
            message = aio_pika.Message(
                m.body,
                message_id=m.message_id,
                content_type=m.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, routing_key=route.routing_key, mandatory=True)
    finally:
        await connection.close()
    return route


async def _poll(probe: Callable[[], Awaitable[bool]], deadline: float) -> bool:
    while True:
        if await probe():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)


async def _taken(engine: AsyncEngine, batch_ids: list[str]) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(BATCHES_TAKEN, {"ids": batch_ids})).scalar_one())


async def _caught_up(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool((await conn.execute(CAUGHT_UP)).scalar_one())


async def _show_tables(settings: Settings, batches: list[DemoMessage], deadline: float, waited: float) -> list[str]:
    batch_ids = [b.message_id for b in batches]
    engine = create_engine(settings.database_url, pool_size=1)

    async def all_taken() -> bool:
        return await _taken(engine, batch_ids) == len(batch_ids)

    try:
        if not await _poll(all_taken, deadline):
            taken = await _taken(engine, batch_ids)
            raise CommandFailed(
                f"the service recorded {taken} of {len(batch_ids)} demo batches within {waited:g}s: is it using "
                f"DATABASE_URL={redacted(settings.database_url)}? Its log says more"
            )
        await _poll(lambda: _caught_up(engine), deadline)  # best effort: show what is there by the deadline
        async with engine.connect() as conn:
            return await summary_lines(conn, batch_ids, sample_ids_of(batches))
    finally:
        await engine.dispose()


async def _demo_dead_letters(settings: Settings, deadline: float) -> list[DeadLetter]:
    found: list[DeadLetter] = []

    async def probe() -> bool:
        _, _, letters = await peek_dead_letters(settings, DEAD_LETTER_SCAN)
        found[:] = [letter for letter in letters if letter.id == INVALID_ID]
        return bool(found)

    await _poll(probe, deadline)
    return found


def _next_steps(settings: Settings) -> list[str]:
    return [
        "",
        f'Next: psql "{redacted(settings.database_url)}" and look around, for example',
        "  SELECT platform_creator_username, product_name, status, content_count FROM projections.samples;",
        "  SELECT sample_id, from_status, to_status, observed_at FROM projections.sample_status_history;",
        "  SELECT position, event_type, metadata->>'message_id' FROM eventstore.events ORDER BY position;",
        "Dead letters: `sample-ledger dead-letters list`. Running the demo again records nothing twice.",
    ]


async def run_demo(settings: Settings, out: Callable[[str], None] = print, wait_seconds: float = 30) -> int:
    batches = example_batches()
    route = await publish_demo(settings, [*batches, DemoMessage(INVALID_ID, b"not json", "text/plain")])
    out(
        f"Published {len(batches)} example crawl batches and 1 invalid message to {route.exchange.name} "
        f"(routing key {route.routing_key}); waiting for the service..."
    )
    deadline = time.monotonic() + wait_seconds
    for line in await _show_tables(settings, batches, deadline, wait_seconds):
        out(line)
    dead = await _demo_dead_letters(settings, deadline)
    if dead:
        earlier = f" (and {len(dead) - 1} from earlier demo runs)" if len(dead) > 1 else ""
        out(f"{build_topology(settings.amqp_prefix).dead_letter_queue.name}: {dead[0].line()}{earlier}")
    else:
        out(f"the invalid message {INVALID_ID} did not show up among the dead letters within {wait_seconds:g}s")
    for line in _next_steps(settings):
        out(line)
    return 0
