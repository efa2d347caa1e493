"""`sample-ledger demo`: a newcomer's first look. Publish the bundled example messages to a running
service, wait until it has taken them, and show what came out and where to look next.

Every message keeps a fixed message id (`demo-<file stem>`), so running the demo again records
nothing twice. The invalid message is published only while no dead letter with its id
(`demo-invalid`) is in the dead-letter queue, so the demo adds it there once; once it is replayed or
purged, the next run sends it again.
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
from service.ops.demo_summary import sample_to_explain, summary_lines
from service.ops.failures import CommandFailed
from service.ops.output import Progress, Silent
from service.progress import projection_progress
from service.read_models import all_projections
from service.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INVALID_ID = "demo-invalid"
POLL_SECONDS = 0.25
# How far into the dead-letter queue the demo looks for its own invalid message.
DEAD_LETTER_SCAN = 1000

BATCHES_TAKEN = text("SELECT count(*) FROM projections.crawl_batches WHERE message_id = ANY(:ids)")


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


async def _behind(engine: AsyncEngine, settings: Settings) -> int:
    """Events the projections have still to apply, counted as `status` counts them (in the runner's
    order: comparing positions alone can wait for ever). Projections other than the samples one
    (chatbot schedules) follow a moment after the batches were taken."""
    async with engine.connect() as conn:
        rows = await projection_progress(conn, all_projections(settings))
    return sum(int(row["lag"]) for row in rows)


@dataclass(frozen=True)
class Shown:
    lines: list[str]
    explain: str | None  # the sample id to suggest to `sample-ledger explain`


async def _show_tables(
    settings: Settings, batches: list[DemoMessage], deadline: float, waited: float, progress: Progress
) -> Shown:
    batch_ids = [b.message_id for b in batches]
    engine = create_engine(settings.database_url, pool_size=1)

    async def all_taken() -> bool:
        taken = await _taken(engine, batch_ids)
        progress.update(f"waiting for the service: {taken} of {len(batch_ids)} demo batches recorded")
        return taken == len(batch_ids)

    async def caught_up() -> bool:
        behind = await _behind(engine, settings)
        progress.update(f"waiting for the projections to catch up: {behind} event(s) to apply")
        return behind == 0

    try:
        if not await _poll(all_taken, deadline):
            taken = await _taken(engine, batch_ids)
            raise CommandFailed(
                f"the service recorded {taken} of {len(batch_ids)} demo batches within {waited:g}s: is it using "
                f"DATABASE_URL={redacted(settings.database_url)}? Its log says more"
            )
        await _poll(caught_up, deadline)  # best effort: show what is there by the deadline
        samples = sample_ids_of(batches)
        async with engine.connect() as conn:
            return Shown(await summary_lines(conn, batch_ids, samples), await sample_to_explain(conn, samples))
    finally:
        progress.done()
        await engine.dispose()


async def _demo_dead_letters(settings: Settings, deadline: float, progress: Progress | None = None) -> list[DeadLetter]:
    """The dead letters with the invalid message's id, polled until `deadline` (once, when it has passed)."""
    progress = progress or Silent()
    found: list[DeadLetter] = []

    async def probe() -> bool:
        progress.update(f"waiting for {INVALID_ID} in the dead-letter queue")
        _, _, letters = await peek_dead_letters(settings, DEAD_LETTER_SCAN)
        found[:] = [letter for letter in letters if letter.id == INVALID_ID]
        return bool(found)

    try:
        await _poll(probe, deadline)
    finally:
        progress.done()
    return found


def _next_steps(settings: Settings, sample_id: str | None) -> list[str]:
    steps = [
        "",
        f'Next: psql "{redacted(settings.database_url)}" and look around, for example',
        "  SELECT platform_creator_username, product_name, status, content_count FROM projections.samples;",
        "  SELECT sample_id, from_status, to_status, observed_at FROM projections.sample_status_history;",
        "  SELECT position, event_type, metadata->>'message_id' FROM eventstore.events ORDER BY position;",
        "Dead letters: `sample-ledger dead-letters list`. Running the demo again records nothing twice.",
    ]
    if sample_id is not None:
        steps += ["The whole story of one sample, with why each message was or was not sent:",
                  f"  sample-ledger explain {sample_id}"]  # fmt: skip
    return steps


async def run_demo(
    settings: Settings, out: Callable[[str], None] = print, wait_seconds: float = 30, progress: Progress | None = None
) -> int:
    progress = progress or Silent()
    batches = example_batches()
    route = await publish_demo(settings, batches)
    # Once only: a dead letter with the invalid message's id is already there from an earlier run.
    dead = await _demo_dead_letters(settings, time.monotonic())
    sent, earlier = "", ""
    if dead:
        earlier = f"; {INVALID_ID} is already in {dead_queue(settings)} from an earlier run, so it is not sent again"
    else:
        await publish_demo(settings, [DemoMessage(INVALID_ID, b"not json", "text/plain")])
        sent = "and 1 invalid message "
    out(
        f"Published {len(batches)} example crawl batches {sent}to {route.exchange.name} "
        f"(routing key {route.routing_key}){earlier}; waiting for the service..."
    )
    deadline = time.monotonic() + wait_seconds
    shown = await _show_tables(settings, batches, deadline, wait_seconds, progress)
    for line in shown.lines:
        out(line)
    dead = dead or await _demo_dead_letters(settings, deadline, progress)
    if dead:
        more = f" (and {len(dead) - 1} more from earlier demo runs)" if len(dead) > 1 else ""
        out(f"{dead_queue(settings)}: {dead[0].line()}{more}")
    else:
        out(f"the invalid message {INVALID_ID} did not show up among the dead letters within {wait_seconds:g}s")
    for line in _next_steps(settings, shown.explain):
        out(line)
    return 0


def dead_queue(settings: Settings) -> str:
    return build_topology(settings.amqp_prefix).dead_letter_queue.name
