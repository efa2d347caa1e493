"""An observation that arrives after newer ones is folded where it belongs in time (docs/domain.md,
"Ordering"): the status history is rewritten, the chatbot does what in-order arrival would have done,
an issued run stands, and a rebuild gives exactly the live rows. Real RabbitMQ and PostgreSQL; the
dispatcher and relay driven by a fake clock."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from projections.chatbot_tasks import task_id
from service.app import Service
from service.dispatcher import Dispatcher
from service.ops.maintenance import rebuild_projection
from service.relay import OutboxRelay
from tests.integration.chatbot_support import MX_NOON, FakeClock, bind_worker_queue, page, take_tasks
from tests.support import equals, eventually, projection_lag, publish, rows, scalar

VALE = sample_id("MX", "1729700000000000011", "7491112223334445556")
HISTORY = """
    SELECT from_status, to_status, regression, to_char(observed_at AT TIME ZONE 'UTC', 'MM-DD HH24') AS at
    FROM projections.sample_status_history WHERE sample_id = :s ORDER BY observed_at"""
LIVE_TABLES = {
    "projections.samples": "sample_id",
    "projections.sample_status_history": "event_position, sample_id, seq",
    "projections.sample_sightings": "sample_id, event_position",
    "projections.chatbot_schedules": "sample_id, scenario",
    "projections.chatbot_tasks": "task_id",
}


async def history(engine: AsyncEngine) -> list[tuple[str | None, str, bool, str]]:
    found = await rows(engine, HISTORY, s=VALE)
    return [(h["from_status"], h["to_status"], h["regression"], h["at"]) for h in found]


async def schedules(engine: AsyncEngine) -> dict[str, tuple[str, int]]:
    found = await rows(engine, "SELECT scenario, state, run_count FROM projections.chatbot_schedules")
    return {s["scenario"]: (s["state"], s["run_count"]) for s in found}


async def crawled(service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine,
                  status: str, extracted: str) -> None:  # fmt: skip
    """Publish a one-row page and wait until the samples projection has folded it."""
    before = await scalar(engine, "SELECT count(*) FROM projections.crawl_batches")
    await publish(amqp, service.topology.ingest.name, "samples.crawled", page(status, extracted),
                  message_id=f"page-{uuid.uuid4().hex[:8]}")  # fmt: skip
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), equals(before + 1))


async def chatbot_settled(engine: AsyncEngine) -> None:
    """Every derived event folded by the chatbot projection as well."""
    await eventually(lambda: projection_lag(engine, "chatbot"), equals(0))


async def snapshot(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    return {t: await rows(engine, f"SELECT * FROM {t} ORDER BY {key}") for t, key in LIVE_TABLES.items()}


async def test_a_late_older_observation_enters_the_history_and_the_chatbot_sends_what_time_order_sends(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    await crawled(service, amqp, engine, "Shipped", "2026-05-02 10:00:00")
    await chatbot_settled(engine)
    assert await history(engine) == [(None, "shipped", False, "05-02 10")]
    assert await schedules(engine) == {}  # a first sighting in shipped is history back-filled: no message

    # The page read a day earlier arrives now: the sample was ready to ship first, then shipped.
    await crawled(service, amqp, engine, "Ready to ship", "2026-05-01 10:00:00")
    await chatbot_settled(engine)
    assert await history(engine) == [(None, "ready_to_ship", False, "05-01 10"),
                                     ("ready_to_ship", "shipped", False, "05-02 10")]  # fmt: skip
    assert await schedules(engine) == {"shipped": ("pending", 0)}
    (sample,) = await rows(engine, "SELECT status, status_changed_at, sightings_complete FROM projections.samples")
    assert (sample["status"], sample["status_changed_at"].isoformat()) == ("shipped", "2026-05-02T10:00:00+00:00")
    assert sample["sightings_complete"] is True
    assert (
        await scalar(engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'sample.history_revised'") == 1
    )

    clock = FakeClock(MX_NOON)
    async for workers in bind_worker_queue(amqp, service.topology.chatbot.name, f"workers-{uuid.uuid4().hex[:8]}"):
        relay = OutboxRelay(engine, service.settings.amqp_url, service.topology.chatbot.name, clock=clock)
        await relay.connect()
        try:
            assert (await Dispatcher(engine, service.settings, clock).dispatch_once()).issued == 1
            assert (await relay.relay_once()).published == 1
        finally:
            await relay.close()
        assert [message_id for message_id, _ in await take_tasks(workers)] == [task_id(VALE, "shipped", 1)]
    await chatbot_settled(engine)
    live = await snapshot(engine)
    events_before = await scalar(engine, "SELECT count(*) FROM eventstore.events")

    assert await rebuild_projection(service.settings, "samples") > 0
    assert await rebuild_projection(service.settings, "chatbot") > 0
    assert await snapshot(engine) == live
    assert await scalar(engine, "SELECT count(*) FROM eventstore.events") == events_before  # nothing derived again


async def test_an_issued_run_stands_when_a_late_observation_says_it_would_not_have_been_sent(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    await crawled(service, amqp, engine, "Ready to ship", "2026-05-01 10:00:00")
    await crawled(service, amqp, engine, "Shipped", "2026-05-03 10:00:00")
    await chatbot_settled(engine)
    assert (await Dispatcher(engine, service.settings, FakeClock(MX_NOON)).dispatch_once()).issued == 1
    await chatbot_settled(engine)
    assert await schedules(engine) == {"shipped": ("dispatched", 1)}

    # Completed on May 2 arrives late: in time order, shipped on May 3 was a regression, never a message.
    await crawled(service, amqp, engine, "Completed", "2026-05-02 10:00:00")
    await chatbot_settled(engine)
    assert await history(engine) == [
        (None, "ready_to_ship", False, "05-01 10"),
        ("ready_to_ship", "completed", False, "05-02 10"),
        ("completed", "shipped", True, "05-03 10"),
    ]
    assert await schedules(engine) == {"shipped": ("dispatched", 1)}  # what was issued is not taken back
    assert (await Dispatcher(engine, service.settings, FakeClock(MX_NOON)).dispatch_once()).issued == 0


async def test_a_sample_first_seen_before_sightings_were_kept_treats_a_late_observation_as_stale_also_in_a_rebuild(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    await crawled(service, amqp, engine, "Shipped", "2026-05-02 10:00:00")
    async with engine.begin() as conn:  # as migration 0008 leaves the rows it found, and its cut-over
        await conn.exec_driver_sql("UPDATE projections.samples SET sightings_complete = false")
        await conn.exec_driver_sql("DELETE FROM projections.sample_sightings")
        await conn.exec_driver_sql(
            "UPDATE projections.sightings_since SET after_position = (SELECT max(position) FROM eventstore.events)"
        )
    await crawled(service, amqp, engine, "Ready to ship", "2026-05-01 10:00:00")
    assert await history(engine) == [(None, "shipped", False, "05-02 10")]
    assert await scalar(engine, "SELECT count(*) FROM projections.sample_sightings") == 0
    assert (
        await scalar(engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'sample.history_revised'") == 0
    )
    # A rebuild folds the sample by the rules it had: first seen at or before the cut-over, it is
    # incomplete again, and the late observation stays stale.
    live = await snapshot(engine)
    assert await rebuild_projection(service.settings, "samples") > 0
    assert await snapshot(engine) == live


async def test_a_deferred_schedule_set_back_by_a_revised_history_is_deferred_again_not_left_due(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    night = FakeClock(MX_NOON + timedelta(hours=11))  # 23:00 in Mexico City: quiet hours
    await crawled(service, amqp, engine, "Ready to ship", "2026-05-01 10:00:00")
    await crawled(service, amqp, engine, "Shipped", "2026-05-02 10:00:00")
    await chatbot_settled(engine)
    assert (await Dispatcher(engine, service.settings, night).dispatch_once()).deferred == 1
    await chatbot_settled(engine)
    morning = await scalar(engine, "SELECT due_at FROM projections.chatbot_schedules")
    assert morning > night.now

    # A late first sighting: the history folded again calls for the same message, due when the sample
    # entered shipped, so the deferral is undone.
    await crawled(service, amqp, engine, "To review", "2026-04-30 10:00:00")
    await chatbot_settled(engine)
    assert await scalar(engine, "SELECT due_at FROM projections.chatbot_schedules") < night.now

    assert (await Dispatcher(engine, service.settings, night).dispatch_once()).deferred == 1
    await chatbot_settled(engine)
    assert await scalar(engine, "SELECT due_at FROM projections.chatbot_schedules") == morning
    assert (await Dispatcher(engine, service.settings, night).dispatch_once()).total == 0  # not due: no hot loop
    assert (
        await scalar(engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'chatbot.dispatch_deferred'")
        == 2
    )
