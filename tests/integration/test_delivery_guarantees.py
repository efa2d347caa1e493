"""Nothing acknowledged is lost, nothing is recorded twice, poison goes to `ledger.dead` with its reason."""

from __future__ import annotations

import asyncio
import json

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.crawl_batches import crawl_batch_event
from handlers.delivery import delivery_of
from service.app import Service, build_service
from service.eventstore import append_events
from service.settings import Settings
from tests.support import drain, eventually, example, publish, publish_without_message_id, rows, scalar

PROJECTED = """
    SELECT sample_id, status, status_observed_at, last_seen_at, content_count, fingerprint
    FROM projections.samples ORDER BY sample_id
"""


async def event_count(engine: AsyncEngine) -> int:
    return int(
        await scalar(engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'sample.crawl_batch_recorded'")
    )


async def queue_depth(amqp: aio_pika.abc.AbstractConnection, name: str) -> int:
    channel = await amqp.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def test_same_message_published_twice_is_one_event(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest = service.topology.ingest.name
    await publish(amqp, ingest, "samples.crawled", example("9_1"), message_id="dup-1")
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n == 1)
    before = await rows(engine, PROJECTED)

    await publish(amqp, ingest, "samples.crawled", example("9_1"), message_id="dup-1")
    # Without a message id, the routing key and body hash are the key: the same bytes twice are one event.
    body = json.dumps(example("9_2")).encode()
    for _ in range(2):
        await publish_without_message_id(service.settings.amqp_url, ingest, "samples.crawled", body)
    await eventually(lambda: queue_depth(amqp, service.topology.routes["samples.crawled"].queue.name), lambda n: n == 0)
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n == 2)

    assert await event_count(engine) == 2
    after = {r["sample_id"]: r for r in await rows(engine, PROJECTED)}
    assert all(after[r["sample_id"]] == r for r in before), "a duplicate changed the projection"


async def test_message_redelivered_after_a_crash_before_ack_is_one_event(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    """A consumer records the batch, commits, then dies before acking: RabbitMQ redelivers it to the
    running service, which must recognise it."""
    queue_name = service.topology.routes["samples.crawled"].queue.name
    await service.broker.stop()  # stop consuming, so the "crashing" consumer below gets the message
    await publish(amqp, service.topology.ingest.name, "samples.crawled", example("9_1"), message_id="crash-1")

    crashing = await aio_pika.connect(str(service.settings.amqp_url))
    channel = await crashing.channel()
    queue = await channel.declare_queue(queue_name, passive=True)
    message = await eventually(lambda: queue.get(fail=False), lambda m: m is not None)
    assert message is not None
    event = crawl_batch_event(delivery_of(message))
    async with engine.begin() as conn:
        assert await append_events(conn, [event]) == [True]
    await crashing.close()  # dies without ack: the message goes back to the queue

    await service.broker.start()
    await eventually(lambda: queue_depth(amqp, queue_name), lambda n: n == 0)
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n == 1)
    assert await event_count(engine) == 1
    assert await scalar(engine, "SELECT count(*) FROM projections.samples") == 3


async def test_poison_is_dead_lettered_with_its_reason_and_consuming_goes_on(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest = service.topology.ingest.name
    too_many_rows = {"source": "bulk", "rows": [{"platformProductId": str(i)} for i in range(5001)]}
    oversized = b'{"source": "x", "rows": [{"platformProductId": "1", "pad": "' + b"a" * (16 * 1024 * 1024) + b'"}]}'
    poison = {
        "not-json": (b"{not json", "invalid_json"),
        "not-object": (b"[1, 2]", "invalid_schema"),
        "no-source": (json.dumps({"rows": [{"platformProductId": "1"}]}).encode(), "invalid_schema"),
        "no-rows": (json.dumps({"source": "x", "rows": []}).encode(), "invalid_schema"),
        "too-many-rows": (json.dumps(too_many_rows).encode(), "too_large"),
        "over-16-mib": (oversized, "too_large"),
    }
    for message_id, (body, _) in poison.items():
        await publish(amqp, ingest, "samples.crawled", body, message_id=message_id)
    await publish(amqp, ingest, "samples.crawled", example("9_1"), message_id="good-after-poison")

    await eventually(lambda: queue_depth(amqp, service.topology.dead_letter_queue.name), lambda n: n >= len(poison))
    dead = {m.message_id: m for m in await drain(amqp, service.topology.dead_letter_queue.name)}
    assert set(dead) == set(poison)
    for message_id, (body, reason) in poison.items():
        letter = dead[message_id]
        assert letter.headers["x-ledger-reason"] == reason, message_id
        assert letter.headers["x-ledger-detail"], message_id
        assert letter.headers["x-ledger-routing-key"] == "samples.crawled"
        assert letter.body == body, "a dead letter must be the message unchanged"
    assert "source: Field required" in str(dead["no-source"].headers["x-ledger-detail"])

    # The consumer is still alive: the good batch after the poison was recorded and projected.
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n == 1)
    assert await event_count(engine) == 1


async def test_the_watchdogs_probes_are_taken_and_never_recorded(
    settings: Settings, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    """Idle queues get a probe every interval; each is acknowledged, nothing is recorded or
    dead-lettered, and a live consumer is never taken for lost."""
    svc = build_service(settings.model_copy(update={"chatbot_dispatch_enabled": False, "consumer_probe_seconds": 0.1}))
    await svc.app.start()
    try:
        await asyncio.sleep(3)  # ≈ 30 probe intervals, 10 × the silence that would mean a lost consumer
        await publish(amqp, svc.topology.ingest.name, "samples.crawled", example("9_1"), message_id="after-probes")
        await eventually(lambda: event_count(engine), lambda n: n == 1)
        assert svc.exit_code == 0
        recorded = "SELECT count(*) FROM eventstore.events WHERE dedupe_key IS NOT NULL"  # messages, not derived
        assert int(await scalar(engine, recorded)) == 1
        assert await queue_depth(amqp, svc.topology.dead_letter_queue.name) == 0
        for route in svc.topology.routes.values():
            assert await queue_depth(amqp, route.queue.name) == 0, f"a probe was left on {route.queue.name}"
    finally:
        await svc.app.stop()
