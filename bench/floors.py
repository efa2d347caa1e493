"""The raw floor under each workload, measured in the same run on the same broker and server.

Broker: the same messages, through the same publisher (persistent, confirms, mandatory) into a bare
quorum queue, then a bare aio-pika consumer that acknowledges each one with the service's prefetch;
and the round trip of one message at a time, publish → delivered to that consumer.

PostgreSQL: the sample rows the workload's messages carry (one per crawl row, one per status report
or type-56 webhook), written to scratch tables shaped like projections.samples: once with COPY into
an empty table with its columns, once with an asyncpg executemany of INSERT … ON CONFLICT DO UPDATE
into a table with its columns, keys and indexes (`LIKE … INCLUDING ALL`) that keeps earlier
workloads' rows, as projections.samples does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
from sqlalchemy import make_url

from bench.publishing import publish_all
from bench.workloads import Workload
from events.identity import creator_key, sample_id
from service.settings import Settings
from tests.faults.publisher import Message, RecordingPublisher

ROUND_TRIPS = 200
SCHEMA = "bench_floor"
COLUMNS = ("sample_id", "region", "platform_product_id", "creator_key", "platform_creator_id", "status",
           "status_observed_at", "first_seen_at", "last_seen_at", "application_id", "fingerprint",
           "last_event_position")  # fmt: skip
_PLACEHOLDERS = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
_UPSERT = (
    f"INSERT INTO {SCHEMA}.upsert_target ({', '.join(COLUMNS)}) VALUES ({_PLACEHOLDERS}) "
    "ON CONFLICT (sample_id) DO UPDATE SET status = EXCLUDED.status, status_observed_at = EXCLUDED.status_observed_at, "
    "last_seen_at = EXCLUDED.last_seen_at, fingerprint = EXCLUDED.fingerprint, "
    "last_event_position = EXCLUDED.last_event_position"
)


@dataclass(frozen=True)
class BrokerFloor:
    publish_seconds: float  # all messages published and confirmed
    consume_seconds: float  # all of them delivered and acknowledged
    round_trips: list[float]  # seconds, one message at a time


@dataclass(frozen=True)
class DatabaseFloor:
    rows: int
    copy_seconds: float
    upsert_seconds: float


async def broker_floor(amqp_url: str, prefix: str, workload: Workload) -> BrokerFloor:
    exchange_name = "bench-floor"  # published as ledger.bench-floor under the prefix, like the workloads
    floor_messages = [replace(m, exchange=exchange_name, routing_key="floor") for m in workload.messages]
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(f"{prefix}ledger.{exchange_name}", aio_pika.ExchangeType.DIRECT)
        queue = await channel.declare_queue(f"{prefix}bench.floor.{uuid.uuid4().hex[:6]}", durable=True,
                                            arguments={"x-queue-type": "quorum"})  # fmt: skip
        await queue.bind(exchange, "floor")
        try:
            publisher = RecordingPublisher(connection, prefix)
            start = time.monotonic()
            await publish_all(publisher, floor_messages)
            published = time.monotonic()
            consume_seconds = await _consume_all(connection, queue.name, len(floor_messages))
            round_trips = await _round_trips(connection, publisher, queue.name, floor_messages[:ROUND_TRIPS])
        finally:
            await queue.delete(if_unused=False, if_empty=False)
            await exchange.delete()
    finally:
        await connection.close()
    return BrokerFloor(published - start, consume_seconds, round_trips)


async def _consume_all(connection: aio_pika.abc.AbstractConnection, queue_name: str, count: int) -> float:
    """A bare consumer on the backlog: deliver and acknowledge every message, with the service's prefetch."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=Settings.model_fields["ingest_prefetch"].default)
    queue = await channel.get_queue(queue_name)
    taken, done = 0, asyncio.Event()

    async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal taken
        await message.ack()
        taken += 1
        if taken == count:
            done.set()

    start = time.monotonic()
    tag = await queue.consume(take)
    await done.wait()
    seconds = time.monotonic() - start
    await queue.cancel(tag)
    await channel.close()
    return seconds


async def _round_trips(connection: aio_pika.abc.AbstractConnection, publisher: RecordingPublisher, queue_name: str,
                       messages: list[Message]) -> list[float]:  # fmt: skip
    """One message at a time: publish (confirmed) → delivered to a waiting consumer."""
    channel = await connection.channel()
    queue = await channel.get_queue(queue_name)
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        arrived.put_nowait(time.monotonic())
        await message.ack()

    tag = await queue.consume(take)
    trips = []
    for message in messages:
        start = time.monotonic()
        await publisher.publish(message)
        trips.append(await arrived.get() - start)
    await queue.cancel(tag)
    await channel.close()
    return trips


def _observed(text: str) -> datetime:
    moment = datetime.fromisoformat(text)  # also reads the collectors' "YYYY-MM-DD HH:MM:SS"
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sample_row(position: int, region: str, product: str, creator_id: str | None, username: str | None,
                status: str, observed: datetime, application_id: str | None) -> tuple[Any, ...] | None:  # fmt: skip
    key = creator_key(creator_id, username)
    if not product or key is None:
        return None
    facts = (sample_id(region, product, key), region.upper(), product, key, creator_id, status, observed,
             observed, observed, application_id)  # fmt: skip
    return (*facts, hashlib.sha256(repr(facts).encode()).hexdigest(), position)


def sample_rows(messages: list[Message]) -> list[tuple[Any, ...]]:
    """The projections.samples-shaped rows the messages carry, in order; other inputs carry none."""
    rows: list[tuple[Any, ...]] = []
    for n, message in enumerate(messages, start=1):
        body = json.loads(message.body)
        if message.routing_key == "samples.crawled":
            found = [_sample_row(n, r.get("region", "MX"), r.get("platformProductId"), r.get("platformCreatorId"),
                                 r.get("platformCreatorUsername"), r.get("status", ""), _observed(r["extractedTime"]),
                                 r.get("applicationId")) for r in body["rows"]]  # fmt: skip
        elif message.routing_key == "sample.status_reported":
            found = [_sample_row(n, body["region"], body["platformProductId"], body.get("platformCreatorId"),
                                 body.get("platformCreatorUsername"), str(body["status"]),
                                 _observed(body["observedAt"]), body.get("applicationId"))]  # fmt: skip
        elif message.routing_key.startswith("tiktok.shop."):
            data = body["data"]
            found = [_sample_row(n, "MX", data["product"]["id"], data["creator"]["creator_open_id"], None,
                                 data["new_status"], datetime.fromtimestamp(body["timestamp"], UTC),
                                 data.get("application_id"))]  # fmt: skip
        else:
            found = []
        rows.extend(row for row in found if row is not None)
    return rows


def _dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def prepare_database_floor(database_url: str) -> None:
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        # Columns only for COPY: a workload names one sample many times, and a key would refuse the second.
        await conn.execute(f"CREATE TABLE {SCHEMA}.copy_target (LIKE projections.samples INCLUDING DEFAULTS)")
        await conn.execute(f"CREATE TABLE {SCHEMA}.upsert_target (LIKE projections.samples INCLUDING ALL)")
    finally:
        await conn.close()


# Server settings that change what the figures mean: a small buffer cache makes appends to a large log
# dearer (docs/performance.md, "The growth finding"), and without autovacuum a long run reads dead rows.
SERVER_SETTINGS = ("server_version", "shared_buffers", "autovacuum", "synchronous_commit")


async def server_settings(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in SERVER_SETTINGS}
    finally:
        await conn.close()


async def database_floor(database_url: str, workload: Workload) -> DatabaseFloor:
    rows = sample_rows(workload.messages)
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        await conn.execute(f"TRUNCATE {SCHEMA}.copy_target")
        start = time.monotonic()
        await conn.copy_records_to_table("copy_target", schema_name=SCHEMA, columns=COLUMNS, records=rows)
        copied = time.monotonic()
        await conn.executemany(_UPSERT, rows)
        upserted = time.monotonic()
    finally:
        await conn.close()
    return DatabaseFloor(len(rows), copied - start, upserted - copied)
