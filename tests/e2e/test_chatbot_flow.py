"""End to end: crawl pages move samples through their statuses; the workers' queue receives exactly the
expected chatbot tasks (real RabbitMQ and PostgreSQL, the service running in-process)."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from projections.chatbot_tasks import task_id
from service.app import Service
from tests.integration.chatbot_support import page, take_tasks
from tests.support import eventually, publish, rows, scalar, settled

VALE = sample_id("MX", "1729700000000000011", "7491112223334445556")
BETO = sample_id("MX", "1729700000000000011", "7492223334445556667")


async def crawl(amqp: aio_pika.abc.AbstractConnection, service: Service, body: dict[str, Any]) -> None:
    await publish(amqp, service.topology.ingest.name, "samples.crawled", body, message_id=str(uuid.uuid4()))


async def tasks_arrive(queue: aio_pika.abc.AbstractQueue, count: int) -> list[tuple[str | None, dict[str, Any]]]:
    got: list[tuple[str | None, dict[str, Any]]] = []

    async def more() -> int:
        got.extend(await take_tasks(queue))
        return len(got)

    await eventually(more, lambda n: n >= count, timeout=20)
    return got


async def pipeline(engine: AsyncEngine) -> dict[str, Any]:
    """Everything that moves when a task is decided, published or folded."""
    (state,) = await rows(
        engine,
        """
        SELECT (SELECT max(position) FROM eventstore.events) AS head,
               (SELECT count(*) FROM eventstore.chatbot_outbox) AS outbox,
               (SELECT count(*) FROM eventstore.chatbot_outbox WHERE published_at IS NULL) AS unpublished,
               (SELECT coalesce(sum(attempts), 0) FROM eventstore.chatbot_outbox) AS attempts,
               (SELECT array_agg(position ORDER BY projection) FROM projections.checkpoints) AS checkpoints,
               (SELECT count(*) FROM projections.chatbot_schedules WHERE state = 'pending' AND due_at <= now()) AS due
        """,
    )
    return state


async def test_samples_moving_through_statuses_produce_exactly_the_expected_tasks(
    live_service: Service,
    worker_queue: aio_pika.abc.AbstractQueue,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
) -> None:
    await crawl(amqp, live_service, page("To review", "2026-05-01 10:00:00"))
    await crawl(amqp, live_service, page("Ready to ship", "2026-05-01 10:00:00", creator="7492223334445556667"))
    # First sightings already past review: a collector back-filling history gets no message.
    await crawl(amqp, live_service, page("Shipped", "2026-05-01 10:00:00", creator="7000000000000000001"))
    await crawl(amqp, live_service, page("Shipped", "2026-05-01 10:00:00", region="FR", creator="7000000000000000002"))
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.samples"), lambda n: n == 4)

    await crawl(amqp, live_service, page("Shipped", "2026-05-02 10:00:00"))
    await crawl(amqp, live_service, page("Shipped", "2026-05-02 10:00:00", creator="7492223334445556667"))
    shipped = await tasks_arrive(worker_queue, 2)

    await crawl(amqp, live_service, page("Content pending", "2026-05-03 10:00:00"))
    await crawl(
        amqp, live_service, page("Completed", "2026-05-04 10:00:00", creator="7492223334445556667", expanded=True)
    )
    later = await tasks_arrive(worker_queue, 2)

    tasks = shipped + later
    assert sorted((t["sampleId"], t["scenario"]) for _, t in tasks) == sorted(
        [(VALE, "shipped"), (BETO, "shipped"), (VALE, "content_pending"), (BETO, "no_content")]
    )
    for message_id, task in tasks:
        assert message_id == task["taskId"] == task_id(task["sampleId"], task["scenario"], 1)
        assert task["region"] == "MX"
        assert task["platformCreatorId"]
        assert task["messages"]
        assert all(m["content"] for m in task["messages"])
    (content_pending,) = [t for _, t in tasks if t["scenario"] == "content_pending"]
    assert [m["type"] for m in content_pending["messages"]] == ["text", "link"]
    assert content_pending["messages"][1]["content"] == f"https://creator.infound.ai/samples/{VALE}"

    # Nothing more is on its way: let the log, the outbox and the checkpoints stay still for ten dispatcher and
    # relay poll intervals (a wrong extra task would be decided, published and folded well within that), then
    # drive one more cycle by hand, and only then look at the queue.
    published = "SELECT count(*) FROM projections.chatbot_tasks WHERE published_at IS NOT NULL"
    await eventually(lambda: scalar(engine, published), lambda n: n == 4)
    quiet = await settled(lambda: pipeline(engine), quiet=10 * live_service.settings.chatbot_poll_seconds)
    assert quiet["unpublished"] == 0
    assert quiet["due"] == 0
    assert live_service.dispatcher is not None
    assert live_service.relay is not None
    assert (await live_service.dispatcher.dispatch_once()).total == 0
    assert (await live_service.relay.relay_once()).published == 0
    assert await take_tasks(worker_queue) == []
    assert await pipeline(engine) == quiet
    skipped = await rows(
        engine,
        "SELECT scenario, state, skip_reason FROM projections.chatbot_schedules "
        "WHERE state NOT IN ('dispatched', 'pending')",
    )
    assert skipped == []  # the FR sample was a first sighting: not even scheduled
    assert await scalar(engine, "SELECT count(*) FROM projections.chatbot_tasks") == 4
