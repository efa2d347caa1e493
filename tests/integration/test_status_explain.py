"""`status` and `explain`, the operator's read-only views, on the real broker and database with the service running."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import aio_pika
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from projections.chatbot_tasks import task_id
from service.app import Service
from service.database import create_engine
from service.eventstore import begin_appending
from service.ops.explain import explain_sample
from service.ops.failures import CommandFailed
from service.ops.status import status_report
from service.settings import Settings
from tests.integration.chatbot_support import page, take_tasks
from tests.support import eventually, example, publish, scalar, section

PRODUCT, CREATOR = "1729600011122233344", "7492223334445556667"  # @techconbeto in example 9.2
TECHCONBETO = sample_id("MX", PRODUCT, CREATOR)


def has(lines: list[str], *parts: str) -> bool:
    """Some line contains every one of `parts`."""
    return any(all(part in line for part in parts) for line in lines)


async def post(amqp: aio_pika.abc.AbstractConnection, exchange: str, key: str, body: Any) -> None:
    await publish(amqp, exchange, key, body, message_id=str(uuid.uuid4()))


def content_pending_page() -> dict[str, Any]:
    """Example 9.2 seen again four days later, techconbeto's sample now waiting for content."""
    later = copy.deepcopy(example("9_2"))
    later["rows"] = [{**later["rows"][0], "status": "Content pending", "extractedTime": "2026-04-25 12:00:00"}]
    return later


async def test_explain_tells_the_whole_story_by_id_and_by_region_product_creator(
    live_service: Service,
    worker_queue: aio_pika.abc.AbstractQueue,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    topology = live_service.topology
    await post(amqp, topology.ingest.name, "samples.crawled", example("9_2"))
    await post(amqp, topology.ingest.name, "samples.crawled", content_pending_page())
    await eventually(lambda: take_tasks(worker_queue), lambda tasks: len(tasks) == 1, timeout=20)
    the_task = task_id(TECHCONBETO, "content_pending", 1)
    result = {"taskId": the_task, "outcome": "sent", "at": "2026-04-25T12:05:00Z"}
    await post(amqp, topology.state.name, "chatbot.result", result)
    backwards = {"region": "MX", "platformProductId": PRODUCT, "platformCreatorId": CREATOR, "status": "Shipped",
                 "observedAt": "2026-04-27T09:00:00Z", "source": "seller_monitor"}  # fmt: skip
    await post(amqp, topology.state.name, "sample.status_reported", backwards)
    # Done, and the relay's confirmation folded too: it commits just after the worker may have the task.
    settled = """SELECT count(*) FROM projections.chatbot_schedules s JOIN projections.chatbot_tasks t USING (sample_id)
                 WHERE s.sample_id = :s AND s.state = 'done' AND t.published_at IS NOT NULL AND t.outcome = 'sent'"""
    await eventually(lambda: scalar(engine, settled, s=TECHCONBETO), lambda n: n == 1)
    await eventually(
        lambda: scalar(engine, "SELECT count(*) FROM projections.sample_status_history WHERE sample_id = :s",
                       s=TECHCONBETO),
        lambda n: n == 3,
    )  # fmt: skip

    story = await explain_sample(settings, TECHCONBETO)

    assert story[0] == f"Sample {TECHCONBETO}"
    assert has(section(story, "Sample"), "status", "shipped", "source seller_monitor")
    history = section(story, "Status history")
    assert len(history) == 3
    assert has(history[:1], "(new) → shipped", "source portal_tiktok_sample_crawler")
    assert has(history[1:2], "shipped → content_pending", "source portal_tiktok_sample_crawler")
    assert has(history[2:], "content_pending → shipped", "source seller_monitor", "REGRESSION")
    assert "REGRESSION" not in history[0] + history[1]
    events = section(story, "Events that mention it")
    for said in (
        "inbound crawl batch from portal_tiktok_sample_crawler",
        "derived: status shipped → content_pending",
        f"chatbot: task {the_task} issued (content_pending run 1)",
        f"chatbot: task {the_task} confirmed by the broker (publication 1)",
        f"inbound worker result: task {the_task} sent",
        "inbound status report from seller_monitor: Shipped",
        "derived: status content_pending → shipped, source seller_monitor REGRESSION",
    ):
        assert has(events, said), said
    positions = [int(line.split()[0].lstrip("#")) for line in events[:-1]]
    assert positions == sorted(positions), "events are listed in log order"
    assert has(section(story, "Chatbot schedules"), "content_pending", "done", "1/1 runs")
    tasks = section(story, "Chatbot tasks")
    assert has(tasks, the_task, "content_pending run 1")
    assert has(tasks, "(1 publication(s))", "outcome sent")

    for reference in (f"MX/{PRODUCT}/{CREATOR}", f"mx/{PRODUCT}/@TechConBeto", TECHCONBETO.upper()):
        by_reference = await explain_sample(settings, reference)
        assert by_reference[0] == f"Sample {TECHCONBETO}", reference
        assert section(by_reference, "Status history") == history, reference


async def test_explain_says_in_words_why_a_schedule_was_skipped(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine, settings: Settings
) -> None:
    product, creator = "1729799999999999922", "7490000000000000444"
    for status, extracted in (("Shipped", "2026-05-01 10:00:00"), ("Content pending", "2026-05-03 10:00:00")):
        await post(amqp, service.topology.ingest.name, "samples.crawled",
                   page(status, extracted, region="FR", product=product, creator=creator))  # fmt: skip
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.chatbot_schedules"), lambda n: n == 1)

    story = await explain_sample(settings, f"FR/{product}/{creator}")

    schedules = section(story, "Chatbot schedules")
    assert has(schedules, "content_pending", "skipped: region FR does not get chatbot messages", "region_not_supported")
    assert section(story, "Chatbot tasks") == ["  none"]


async def test_explain_of_an_unknown_sample_names_what_was_looked_up(settings: Settings) -> None:
    unknown = sample_id("MX", "1", "nobody")
    with pytest.raises(CommandFailed, match=f"no sample 'MX/1/nobody'.*{unknown}"):
        await explain_sample(settings, "MX/1/nobody")
    with pytest.raises(CommandFailed, match=f"no sample '{unknown}'"):
        await explain_sample(settings, unknown)
    with pytest.raises(CommandFailed, match="give a sample id or REGION/PRODUCT_ID/CREATOR"):
        await explain_sample(settings, "MX/1")


async def test_status_shows_consumers_lag_outbox_dead_letters_and_the_oldest_transaction(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine, settings: Settings
) -> None:
    await post(
        amqp, service.topology.ingest.name, "samples.crawled", page("Shipped", "2026-05-01 10:00:00", region="FR")
    )
    await publish(amqp, service.topology.ingest.name, "samples.crawled", b"not json", message_id="poison")

    def settled(lines: list[str]) -> bool:
        head, *projections = section(lines, "Projections")
        recorded = "no events yet" not in head
        caught_up = recorded and all("lag 0 events" in line for line in projections)
        return caught_up and has(section(lines, "Dead letters"), "1 message")

    report = await eventually(lambda: status_report(settings), settled)

    consumers = section(report, "Consumers")
    assert [line.split()[0] for line in consumers] == [r.queue.name for r in service.topology.routes.values()]
    assert all("1 consumer, 0 waiting" in line for line in consumers), consumers
    assert has(section(report, "Dead letters"), service.topology.dead_letter_queue.name, "1 message")
    assert {line.split()[0] for line in section(report, "Projections")[1:]} == {"samples", "catalog", "chatbot"}
    assert section(report, "Outbox") == ["  0 waiting"]

    service_engine = create_engine(settings.database_url, pool_size=1)  # the role the service appends as
    try:
        async with service_engine.connect() as held:  # an appender that wrote: it holds the projections' fence
            pid = (await held.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await begin_appending(held)
            await held.execute(text("SELECT pg_current_xact_id()"))
            oldest = section(await status_report(settings), "Oldest open transaction")[0]
            assert oldest.startswith("  pid "), oldest
            if f"pid {pid} " in oldest:  # another session on a shared server may be older still
                assert "idle in transaction for" in oldest
                assert "appends events, so it holds projections back until it ends" in oldest
        async with service_engine.connect() as held:  # a transaction that wrote but appends nothing holds nobody back
            pid = (await held.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await held.execute(text("SELECT pg_current_xact_id()"))
            oldest = section(await status_report(settings), "Oldest open transaction")[0]
            if f"pid {pid} " in oldest:
                assert "appends no events, so it does not hold projections back" in oldest
    finally:
        await service_engine.dispose()
    # The superuser's appender: `status`, run as the service's role, sees it only in part.
    async with engine.connect() as held:
        await begin_appending(held)
        await held.execute(text("SELECT pg_current_xact_id()"))
        (hidden,) = section(await status_report(settings), "Transactions hidden from this role")
        assert hidden.startswith("  "), hidden
        assert re.search(r"\d+ of them appends? events, so (it holds|they hold) projections back", hidden), hidden
        assert f"GRANT pg_read_all_stats TO {make_url(settings.database_url).username}" in hidden


async def test_status_shows_the_outbox_backlog_while_no_worker_queue_takes_tasks(
    live_service: Service, amqp: aio_pika.abc.AbstractConnection, settings: Settings
) -> None:
    await post(amqp, live_service.topology.ingest.name, "samples.crawled", example("9_2"))
    await post(amqp, live_service.topology.ingest.name, "samples.crawled", content_pending_page())

    report = await eventually(lambda: status_report(settings), lambda lines: len(section(lines, "Outbox")) == 2)

    waiting, failing = section(report, "Outbox")
    assert waiting.startswith("  1 waiting, oldest "), waiting
    assert f"task {task_id(TECHCONBETO, 'content_pending', 1)} publication 1 after" in failing
    # The outbox row is written with the task_issued event; the tasks table follows once the projection folds it.
    story = await eventually(
        lambda: explain_sample(settings, TECHCONBETO), lambda lines: section(lines, "Chatbot tasks") != ["  none"]
    )
    assert has(section(story, "Chatbot tasks"), "not yet published; no outcome yet")


async def test_status_says_what_is_missing_or_unreachable_instead_of_failing(settings: Settings) -> None:
    report = await status_report(settings)  # the service never ran: no queues, no checkpoints
    assert all(line.endswith("missing (is the service running?)") for line in section(report, "Consumers"))
    assert has(section(report, "Projections"), "samples", "no checkpoint yet, lag 0 events")

    nowhere = settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:9/x", "amqp_url": "amqp://guest:secret@127.0.0.1:9/"}
    )
    report = await status_report(nowhere)
    assert section(report, "Consumers") == section(report, "Dead letters")
    assert has(section(report, "Consumers"), "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:9/")
    for title in ("Projections", "Outbox", "Oldest open transaction"):
        assert has(section(report, title), "cannot reach PostgreSQL (DATABASE_URL=postgresql://postgres@127.0.0.1:9/x)")
    assert not has(report, "secret")
