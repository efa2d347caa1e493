"""A database outage holds messages back instead of dead-lettering them, and two replicas consuming at
once give the same sample state as a serial order would."""

from __future__ import annotations

import asyncio
import copy
import random

import aio_pika
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from service.app import build_service
from service.settings import Settings
from tests.faults.proxy import FaultProxy
from tests.support import drain, eventually, example, publish, rows, scalar


async def test_a_database_outage_holds_messages_back_and_dead_letters_none(
    settings: Settings, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    """Longer than every retry used to last (6 attempts, about 10 s): the messages wait unacknowledged,
    none becomes a dead letter, and each is recorded once when the database is back."""
    url = make_url(settings.database_url)
    proxy = await FaultProxy(url.host or "127.0.0.1", int(url.port or 5432)).start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    service = build_service(settings.model_copy(update={"database_url": through_proxy}))
    await service.app.start()
    try:
        proxy.cut()
        for n in range(2):
            await publish(amqp, service.topology.ingest.name, "samples.crawled", example("9_1"), message_id=f"m{n}")
        await asyncio.sleep(12)
        assert await drain(amqp, service.topology.dead_letter_queue.name) == [], "an outage made dead letters"
        proxy.restore()
        recorded = "SELECT count(*) FROM eventstore.events WHERE metadata->>'message_id' IN ('m0', 'm1')"
        await eventually(lambda: scalar(engine, recorded), lambda n: n == 2, timeout=30)
    finally:
        await service.app.stop()
        await proxy.close()
    assert await scalar(engine, recorded) == 2


async def test_two_replicas_consuming_at_once_leave_each_sample_in_its_newest_observed_status(
    settings: Settings, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    replicas = [build_service(settings.model_copy(update={"ingest_prefetch": 4})) for _ in range(2)]
    for replica in replicas:
        await replica.app.start()
    try:
        statuses = ["To review", "Ready to ship", "Shipped", "Content pending", "Completed"]
        sightings = []
        for creator in ("7000000000000000001", "7000000000000000002", "7000000000000000003"):
            for hour in range(20):
                batch = copy.deepcopy(example("9_2"))
                batch["rows"] = [
                    {
                        **batch["rows"][0],
                        "platformCreatorId": creator,
                        "status": random.choice(statuses),
                        "extractedTime": f"2026-04-21 {hour:02d}:00:00",
                    }
                ]
                sightings.append((creator, hour, batch))
        random.shuffle(sightings)  # arrival order is not observation order
        for n, (_, _, batch) in enumerate(sightings):
            await publish(amqp, replicas[0].topology.ingest.name, "samples.crawled", batch, message_id=f"s{n}")
        await eventually(
            lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"),
            lambda n: n == len(sightings),
            timeout=60,
        )
    finally:
        for replica in replicas:
            await replica.app.stop()

    for creator in ("7000000000000000001", "7000000000000000002", "7000000000000000003"):
        newest = max((s for s in sightings if s[0] == creator), key=lambda s: s[1])[2]["rows"][0]["status"]
        sid = sample_id("MX", "1729600011122233344", creator)
        (sample,) = await rows(
            engine, "SELECT status, status_observed_at FROM projections.samples WHERE sample_id = :s", s=sid
        )
        assert sample["status"] == newest.lower().replace(" ", "_")
        assert sample["status_observed_at"].hour == 19
        history = await rows(
            engine,
            "SELECT to_status, observed_at FROM projections.sample_status_history "
            "WHERE sample_id = :s ORDER BY observed_at",
            s=sid,
        )
        # Whatever the arrival order and whichever replica folded what: the history of time order.
        in_time = sorted((hour, batch["rows"][0]["status"]) for c, hour, batch in sightings if c == creator)
        expected = [(h, status.lower().replace(" ", "_")) for n, (h, status) in enumerate(in_time)
                    if n == 0 or in_time[n - 1][1] != status]  # fmt: skip
        assert [(h["observed_at"].hour, h["to_status"]) for h in history] == expected
    assert await scalar(
        engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'sample.crawl_batch_recorded'"
    ) == len(sightings)
