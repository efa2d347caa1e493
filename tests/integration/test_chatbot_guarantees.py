"""Chatbot delivery guarantees on real RabbitMQ and PostgreSQL, with the dispatcher and relay driven by a
fake clock: crashes never issue two ids for one run, nothing unroutable is counted as delivered, retries
keep the task id, rebuilds publish nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.identity import sample_id
from projections.chatbot_tasks import task_id
from service.app import Service
from service.dispatcher import Dispatcher
from service.eventstore import append_events
from service.ops.maintenance import rebuild_projection
from service.relay import CLAIM_LEASE, OutboxRelay
from service.runner import catch_up
from service.settings import Settings
from tests.integration.chatbot_support import (
    MX_NOON,
    FakeClock,
    bind_worker_queue,
    commits_writing_the_outbox_fail,
    page,
    take_tasks,
)
from tests.integration.test_event_store import Collecting, ping
from tests.support import equals, eventually, publish, rows, scalar

VALE = sample_id("MX", "1729700000000000011", "7491112223334445556")
SHIPPED_TASK = task_id(VALE, "shipped", 1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MX_NOON)


@pytest.fixture
async def relay(service: Service, engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(engine, service.settings.amqp_url, service.topology.chatbot.name, clock=clock)
    await relay.connect()
    yield relay
    await relay.close()


@pytest.fixture
async def workers(service: Service, amqp: aio_pika.abc.AbstractConnection) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    async for queue in bind_worker_queue(amqp, service.topology.chatbot.name, f"workers-{uuid.uuid4().hex[:8]}"):
        yield queue


async def shipped_schedule_is_due(service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine) -> None:
    ingest = service.topology.ingest.name
    await publish(amqp, ingest, "samples.crawled", page("To review", "2026-05-01 10:00:00"), message_id="p1")
    await publish(amqp, ingest, "samples.crawled", page("Shipped", "2026-05-02 10:00:00"), message_id="p2")
    await eventually(lambda: scalar(engine, "SELECT state FROM projections.chatbot_schedules"), equals("pending"))


async def shipped_task_is_published(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    dispatcher: Dispatcher,
    relay: OutboxRelay,
) -> None:
    await shipped_schedule_is_due(service, amqp, engine)
    assert (await dispatcher.dispatch_once()).issued == 1
    assert (await relay.relay_once()).published == 1
    await folded(engine, "SELECT publications FROM projections.chatbot_tasks", 1)


async def folded(engine: AsyncEngine, sql: str, expected: Any) -> None:
    await eventually(lambda: scalar(engine, sql), lambda value: value == expected)


async def test_crash_after_the_confirm_republishes_only_under_the_same_id(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    clock: FakeClock,
    relay: OutboxRelay,
    workers: aio_pika.abc.AbstractQueue,
) -> None:
    class KilledAfterConfirm(OutboxRelay):
        async def mark_published(self, conn: AsyncConnection, rows: Any, now: Any) -> None:
            raise RuntimeError("process killed between the broker's confirm and the commit")

    await shipped_schedule_is_due(service, amqp, engine)
    assert (await Dispatcher(engine, service.settings, clock).dispatch_once()).issued == 1
    crashing = KilledAfterConfirm(engine, service.settings.amqp_url, service.topology.chatbot.name, clock=clock)
    await crashing.connect()
    with pytest.raises(RuntimeError, match="killed"):
        await crashing.relay_once()
    await crashing.close()
    assert await scalar(engine, "SELECT count(*) FROM eventstore.chatbot_outbox WHERE published_at IS NULL") == 1

    assert (await relay.relay_once()).published == 0  # the restarted service: the dead one's lease holds
    clock.advance(seconds=CLAIM_LEASE.total_seconds())
    assert (await relay.relay_once()).published == 1
    assert (await relay.relay_once()).published == 0
    tasks = await take_tasks(workers)
    assert [message_id for message_id, _ in tasks] == [SHIPPED_TASK, SHIPPED_TASK]
    assert {t["taskId"] for _, t in tasks} == {SHIPPED_TASK}


async def test_crash_before_the_dispatch_commits_publishes_nothing_until_redone(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    clock: FakeClock,
    relay: OutboxRelay,
    workers: aio_pika.abc.AbstractQueue,
) -> None:
    await shipped_schedule_is_due(service, amqp, engine)
    dispatcher = Dispatcher(engine, service.settings, clock)
    # The fault fires only on the outbox row the dispatcher wrote for this run: it decided, then died.
    async with commits_writing_the_outbox_fail(engine):
        with pytest.raises(DBAPIError, match=f"killed before the commit .*{SHIPPED_TASK}"):
            await dispatcher.dispatch_once()
    assert await scalar(engine, "SELECT count(*) FROM eventstore.chatbot_outbox") == 0
    assert await scalar(engine, "SELECT count(*) FROM eventstore.events WHERE event_type LIKE 'chatbot.%'") == 0
    assert (await relay.relay_once()).published == 0
    assert await take_tasks(workers) == []
    assert await scalar(engine, "SELECT state FROM projections.chatbot_schedules") == "pending"

    # The restarted service (the same dispatcher: it keeps no state of its own) decides the run again.
    assert (await dispatcher.dispatch_once()).issued == 1
    assert (await dispatcher.dispatch_once()).issued == 0  # decided once, whether folded yet or not
    assert (await relay.relay_once()).published == 1
    assert (await relay.relay_once()).published == 0
    assert [message_id for message_id, _ in await take_tasks(workers)] == [SHIPPED_TASK]
    assert await scalar(engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'chatbot.task_issued'") == 1
    assert await scalar(engine, "SELECT count(*) FROM eventstore.chatbot_outbox") == 1


async def test_with_no_queue_bound_tasks_wait_back_off_and_go_out_once_bound(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    clock: FakeClock,
    relay: OutboxRelay,
) -> None:
    await shipped_schedule_is_due(service, amqp, engine)
    await Dispatcher(engine, service.settings, clock).dispatch_once()
    assert (await relay.relay_once()).failed == 1  # returned unroutable: not delivered
    assert (await relay.relay_once()).failed == 0  # backing off, not spinning
    clock.advance(seconds=3)
    assert (await relay.relay_once()).failed == 1
    (row,) = await rows(engine, "SELECT attempts, published_at, last_error FROM eventstore.chatbot_outbox")
    assert row["attempts"] == 2
    assert row["published_at"] is None
    assert "NO_ROUTE" in row["last_error"].upper()

    async for workers in bind_worker_queue(amqp, service.topology.chatbot.name, f"late-{uuid.uuid4().hex[:8]}"):
        clock.advance(seconds=5)
        assert (await relay.relay_once()).published == 1
        assert [message_id for message_id, _ in await take_tasks(workers)] == [SHIPPED_TASK]
    await folded(engine, "SELECT publications FROM projections.chatbot_tasks", 1)


async def test_a_retryable_failure_is_sent_again_an_hour_later_under_the_same_id(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    clock: FakeClock,
    relay: OutboxRelay,
    workers: aio_pika.abc.AbstractQueue,
) -> None:
    dispatcher = Dispatcher(engine, service.settings, clock)
    await shipped_task_is_published(service, amqp, engine, dispatcher, relay)
    failed = {
        "taskId": SHIPPED_TASK,
        "outcome": "failed",
        "reason": "chat input never appeared",
        "retryable": True,
        "at": clock.now.isoformat(),
    }
    await publish(amqp, service.topology.state.name, "chatbot.result", failed, message_id="r1")
    await folded(engine, "SELECT retry_at IS NOT NULL FROM projections.chatbot_tasks", True)

    clock.advance(minutes=59)
    assert (await dispatcher.dispatch_once()).retried == 0
    clock.advance(minutes=1)
    assert (await dispatcher.dispatch_once()).retried == 1
    assert (await dispatcher.dispatch_once()).retried == 0
    await relay.relay_once()
    assert [message_id for message_id, _ in await take_tasks(workers)] == [SHIPPED_TASK, SHIPPED_TASK]

    sent = {"taskId": SHIPPED_TASK, "outcome": "sent", "at": clock.now.isoformat()}
    await publish(amqp, service.topology.state.name, "chatbot.result", sent, message_id="r2")
    await folded(engine, "SELECT closed FROM projections.chatbot_tasks", True)
    (task,) = await rows(engine, "SELECT outcome, publications, retry_at FROM projections.chatbot_tasks")
    assert task == {"outcome": "sent", "publications": 2, "retry_at": None}
    assert await scalar(engine, "SELECT state FROM projections.chatbot_schedules") == "done"
    clock.advance(hours=2)
    assert (await dispatcher.dispatch_once()).total == 0


async def test_quiet_hours_defer_to_nine_in_the_morning_mexico_city(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    clock: FakeClock,
) -> None:
    await shipped_schedule_is_due(service, amqp, engine)
    clock.now = MX_NOON + timedelta(hours=11)  # 23:00 in Mexico City
    report = await Dispatcher(engine, service.settings, clock).dispatch_once()
    assert (report.issued, report.deferred) == (0, 1)
    due = await eventually(
        lambda: scalar(engine, "SELECT due_at FROM projections.chatbot_schedules"),
        lambda d: d is not None and d.hour == 15,
    )
    assert due.isoformat() == "2026-05-05T15:00:00+00:00"  # 09:00 in Mexico City (UTC-6)


async def test_rebuilding_the_chatbot_projection_gives_the_live_rows_and_publishes_nothing(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    clock: FakeClock,
    relay: OutboxRelay,
    workers: aio_pika.abc.AbstractQueue,
) -> None:
    dispatcher = Dispatcher(engine, service.settings, clock)
    await shipped_task_is_published(service, amqp, engine, dispatcher, relay)
    assert len(await take_tasks(workers)) == 1
    tables = ("projections.chatbot_schedules", "projections.chatbot_tasks", "projections.chatbot_opt_outs")
    live = {t: await rows(engine, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    outbox = await scalar(engine, "SELECT count(*) FROM eventstore.chatbot_outbox")

    await rebuild_projection(service.settings, "chatbot")

    assert {t: await rows(engine, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables} == live
    assert (await dispatcher.dispatch_once()).total == 0
    assert (await relay.relay_once()).published == 0
    assert await scalar(engine, "SELECT count(*) FROM eventstore.chatbot_outbox") == outbox
    assert await take_tasks(workers) == []


async def test_a_schedule_moved_after_its_deferral_is_deferred_again_not_left_due(
    engine: AsyncEngine, settings: Settings
) -> None:
    """Found by the replicas fault scenario: the cap deferred run 1 until U; the schedule's due time then
    moved (a new observation), and the next deferral to the same U had the same decision id, so it was
    dropped as a duplicate and the schedule stayed due, the dispatcher retrying it every poll."""
    clock = FakeClock(MX_NOON)
    dispatcher = Dispatcher(engine, settings.model_copy(update={"chatbot_daily_cap": 1}), clock=clock)
    async with engine.begin() as conn:
        await conn.execute(text("""
            INSERT INTO eventstore.chatbot_outbox (task_id, publication, sample_id, scenario, run_no,
                platform_creator_id, body, created_at, next_attempt_at)
            VALUES ('earlier', 1, 'other-sample', 'shipped', 1, 'c1', '[]', :an_hour_ago, :an_hour_ago)"""),
            {"an_hour_ago": MX_NOON - timedelta(hours=1)})  # fmt: skip
        await conn.execute(text("""
            INSERT INTO projections.chatbot_schedules (sample_id, scenario, state, due_at, run_count, max_runs,
                region, platform_creator_id, updated_position)
            VALUES ('s1', 'no_content', 'pending', :due, 0, 4, 'MX', 'c1', 1)"""),
            {"due": MX_NOON - timedelta(minutes=30)})  # fmt: skip
    assert (await dispatcher.dispatch_once()).deferred == 1
    async with engine.begin() as conn:  # a later observation moves the due time (still in the past)
        await conn.execute(text("UPDATE projections.chatbot_schedules SET due_at = :due WHERE sample_id = 's1'"),
                           {"due": MX_NOON - timedelta(minutes=10)})  # fmt: skip
    await dispatcher.dispatch_once()
    deferrals = await scalar(
        engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'chatbot.dispatch_deferred'"
    )
    assert deferrals == 2, "the second deferral was swallowed as a duplicate of the first"


async def test_a_broker_slow_to_confirm_holds_no_projection_back(
    service: Service,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    clock: FakeClock,
    relay: OutboxRelay,
    workers: aio_pika.abc.AbstractQueue,
) -> None:
    """The relay's transaction appends (its tasks' publications): were it open while the broker confirms,
    every projection's fence would wait for the broker. Meanwhile another replica's relay takes nothing."""

    class SlowBroker(OutboxRelay):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.publishing, self.confirm = asyncio.Event(), asyncio.Event()

        async def publish(self, row: Any) -> None:
            self.publishing.set()
            await self.confirm.wait()
            await super().publish(row)

    await shipped_schedule_is_due(service, amqp, engine)
    assert (await Dispatcher(engine, service.settings, clock).dispatch_once()).issued == 1
    slow = SlowBroker(engine, service.settings.amqp_url, service.topology.chatbot.name, clock=clock)
    await slow.connect()
    try:
        in_flight = asyncio.create_task(slow.relay_once())
        await asyncio.wait_for(slow.publishing.wait(), timeout=10)
        reader = Collecting()
        async with engine.begin() as conn:
            await append_events(conn, [ping("while the broker confirms")])
        await catch_up(engine, reader)
        assert len(reader.seen) == 1, "a reader waited for the relay's broker round trip"
        assert (await relay.relay_once()).published == 0, "another relay took a batch in flight"
        slow.confirm.set()
        assert (await in_flight).published == 1
    finally:
        await slow.close()
    assert [message_id for message_id, _ in await take_tasks(workers)] == [SHIPPED_TASK]
    await folded(engine, "SELECT publications FROM projections.chatbot_tasks", 1)
