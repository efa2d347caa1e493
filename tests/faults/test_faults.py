"""Fault scenarios against the service as a user runs it: a subprocess, real RabbitMQ and PostgreSQL,
faults injected by `kill -9` and by our proxies. After each, every invariant is checked with queries."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import pytest

from service.app import EXIT_CONSUMER_LOST
from service.progress import projection_progress
from service.read_models import all_projections
from tests.faults.conftest import Rig, scale
from tests.faults.publisher import Message, mixed_workload

SETTLE_SECONDS = 240


async def _publish_in_background(rig: Rig, messages: list[Message], pace: float = 0.0) -> asyncio.Task[None]:
    async def run() -> None:
        for message in messages:
            await rig.publisher.publish(message)
            if pace:
                await asyncio.sleep(pace)

    return asyncio.create_task(run())


async def _assert_holds(rig: Rig) -> None:
    verdict = await rig.verdict()
    assert verdict.ok, str(verdict)


async def test_crash_loop_loses_and_duplicates_nothing(rig: Rig) -> None:
    """kill -9 at random moments while mixed messages flow, restarting each time."""
    rig.describe("crash loop", f"kill -9 x{scale(3, 5)} at random moments, restarted each time")
    messages = mixed_workload(seed=1, count=scale(600, 20_000))
    replica = rig.replica()
    replica.start()
    await rig.wait_for_topology()
    publishing = await _publish_in_background(rig, messages, pace=scale(2, 0) / 1000)
    rng = random.Random(1)
    for _ in range(scale(3, 5)):
        await asyncio.sleep(rng.uniform(0.5, 2.5))
        replica.kill()
        await asyncio.sleep(rng.uniform(0, 0.5))
        replica.start()
    await publishing
    await rig.settle(SETTLE_SECONDS)
    assert await replica.stop() == 0
    await _assert_holds(rig)


async def test_broker_outage_mid_flow_recovers_without_a_hot_loop(rig: Rig) -> None:
    rig.describe("broker outage", f"RabbitMQ connections cut for {scale(4, 10)} s mid-flow")
    messages = mixed_workload(seed=2, count=scale(300, 5_000))
    replica = rig.replica()
    replica.start()
    await rig.wait_for_topology()
    baseline = replica.rss_kib()
    publishing = await _publish_in_background(rig, messages, pace=0.002)
    await asyncio.sleep(1)
    rig.broker_proxy.cut()
    await asyncio.sleep(scale(4, 10))
    rig.broker_proxy.restore()
    await publishing
    took = await rig.settle(SETTLE_SECONDS)
    assert replica.running(), "the service died instead of reconnecting"
    assert replica.noisy_seconds() <= 2, f"{replica.noisy_seconds()} seconds with over 20 warnings: a hot loop"
    assert replica.rss_kib() < baseline * 2 + 50_000, f"memory grew from {baseline} KiB to {replica.rss_kib()} KiB"
    assert await replica.stop() == 0
    await _assert_holds(rig)
    assert took < SETTLE_SECONDS


async def test_database_outage_mid_flow_recovers_without_a_hot_loop(rig: Rig) -> None:
    rig.describe("database outage", f"PostgreSQL connections cut for {scale(4, 10)} s mid-flow")
    messages = mixed_workload(seed=3, count=scale(300, 5_000))
    replica = rig.replica()
    replica.start()
    await rig.wait_for_topology()
    baseline = replica.rss_kib()
    publishing = await _publish_in_background(rig, messages, pace=0.002)
    await asyncio.sleep(1)
    rig.database_proxy.cut()
    await asyncio.sleep(scale(4, 10))
    rig.database_proxy.restore()
    await publishing
    await rig.settle(SETTLE_SECONDS)
    assert replica.running(), "the service died instead of waiting for the database"
    assert replica.noisy_seconds() <= 2, f"{replica.noisy_seconds()} seconds with over 20 warnings: a hot loop"
    assert replica.rss_kib() < baseline * 2 + 50_000, f"memory grew from {baseline} KiB to {replica.rss_kib()} KiB"
    assert await replica.stop() == 0
    await _assert_holds(rig)


@pytest.mark.parametrize("where", ["another database", "this database, outside the event store"])
async def test_a_long_foreign_transaction_leaves_projection_lag_near_zero(
    rig: Rig, other_database: str, database_url: str, where: str
) -> None:
    rig.describe(f"foreign transaction ({where})", f"write transaction held open in {where} for the whole run")
    # Another role's write (here the superuser's): the service's own role may create no table.
    other = await asyncpg.connect(other_database if where == "another database" else database_url)
    try:
        replica = rig.replica()
        replica.start()
        await rig.wait_for_topology()
        await other.execute("CREATE TABLE public.held (n int)")
        foreign = other.transaction()
        await foreign.start()
        await other.execute("INSERT INTO public.held VALUES (1)")  # a write: the transaction has an id
        publishing = await _publish_in_background(rig, mixed_workload(seed=4, count=scale(200, 2_000)), 0.01)
        worst_lag = 0
        while not publishing.done():
            worst_lag = max(worst_lag, await _worst_lag(rig))
            await asyncio.sleep(0.5)
        await rig.settle(60)  # while the foreign transaction is still open
        await foreign.rollback()
        assert worst_lag < 100, f"projections trailed by {worst_lag} events while {where} held a write"
        assert await replica.stop() == 0
        await _assert_holds(rig)
    finally:
        await other.close()


async def test_an_appending_transaction_held_open_delays_projections_and_loses_nothing(rig: Rig) -> None:
    """An appender of this database (here a hand-made one, holding the appender lock like any) holds
    the read fence: projections must wait for it, because it may still commit events below what they
    would read. Nothing is skipped, nothing is lost, and everything settles once it ends."""
    held_for = scale(6, 30)
    rig.describe("appending transaction", f"an event-store write held open {held_for} s in this database")
    replica = rig.replica()
    replica.start()
    await rig.wait_for_topology()
    baseline = replica.rss_kib()
    holder = await asyncpg.connect(rig.settings.database_url)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT pg_advisory_xact_lock_shared(7241, 1)")  # eventstore.APPENDER_LOCK
        await holder.execute("SELECT pg_current_xact_id()")
        publishing = await _publish_in_background(rig, mixed_workload(seed=8, count=scale(200, 2_000)), 0.01)
        await asyncio.sleep(held_for)
        lag_while_held = await _worst_lag(rig)
        await held.rollback()
    finally:
        await holder.close()
    await publishing
    await rig.settle(SETTLE_SECONDS)
    assert lag_while_held > 0, "projections read past an open appender: the fence is gone"
    assert replica.noisy_seconds() <= 2, f"{replica.noisy_seconds()} seconds with over 20 warnings: a hot loop"
    assert replica.rss_kib() < baseline * 2 + 50_000, f"memory grew from {baseline} KiB to {replica.rss_kib()} KiB"
    assert await replica.stop() == 0
    await _assert_holds(rig)


async def _worst_lag(rig: Rig) -> int:
    async with rig.engine.connect() as conn:
        return max(int(p["lag"]) for p in await projection_progress(conn, all_projections(rig.settings)))


async def test_duplicates_and_disorder_change_nothing(rig: Rig) -> None:
    """Every message twice, some long after later ones; both copies carry the same message id."""
    rig.describe("duplicates and disorder", "every message twice, shuffled")
    messages = mixed_workload(seed=5, count=scale(300, 5_000))
    rng = random.Random(5)
    doubled = messages + rng.sample(messages, len(messages))
    rng.shuffle(doubled)
    replica = rig.replica()
    replica.start()
    await rig.wait_for_topology()
    await rig.publisher.publish_all(doubled)
    await rig.settle(SETTLE_SECONDS)
    assert await replica.stop() == 0
    await _assert_holds(rig)


async def test_replicas_share_the_work_and_survive_losing_one(rig: Rig) -> None:
    rig.describe("replicas", "3 replicas; one killed (-9) mid-flow")
    messages = mixed_workload(seed=6, count=scale(400, 10_000))
    first, second, third = rig.replica(), rig.replica(), rig.replica()
    for replica in (first, second, third):
        replica.start()
    await rig.wait_for_topology()
    publishing = await _publish_in_background(rig, messages, pace=0.002)
    await asyncio.sleep(1.5)
    second.kill()
    await publishing
    await rig.settle(SETTLE_SECONDS)
    assert [await r.stop() for r in (first, third)] == [0, 0]
    await _assert_holds(rig)


async def test_a_consumer_the_server_cancelled_comes_back_or_the_process_exits(rig: Rig) -> None:
    """Delete and re-declare an inbound queue while the service consumes it. RabbitMQ 3.10 sends no
    Basic.Cancel for a quorum queue and keeps a phantom consumer on the new one that swallows
    deliveries, so the client cannot notice; the consumer watchdog's probes do, and the service exits 3
    for its supervisor. Either the service consumes the new queue, or it exits non-zero and, started
    again as a supervisor would, takes the messages the phantom held."""
    rig.describe("cancelled consumer", "inbound queue deleted and declared again while consumed")
    replica = rig.replica(CONSUMER_PROBE_SECONDS="0.5")
    replica.start()
    await rig.wait_for_topology()
    route = rig.topology.routes["creator.messaging"]
    channel = await rig.amqp.channel()
    try:
        await channel.queue_delete(route.queue.name)
        queue = await channel.declare_queue(route.queue.name, durable=True, arguments=route.queue.arguments)
        exchange = await channel.get_exchange(route.exchange.name)
        await queue.bind(exchange, route.routing_key)
    finally:
        await channel.close()
    messages = [m for m in mixed_workload(seed=7, count=200) if m.routing_key == "creator.messaging"][:5]
    await rig.publisher.publish_all(messages)
    deadline = time.monotonic() + 30
    while replica.running() and time.monotonic() < deadline:
        if await rig.settled():
            break
        await asyncio.sleep(0.5)
    if replica.running():
        assert await rig.settled(), f"the cancelled consumer did not come back: {await rig.progress()}"
        assert await replica.stop() == 0
    else:
        assert replica.exit_code() == EXIT_CONSUMER_LOST, "the process exited without saying a consumer was lost"
        lost = [e for e in replica.log_events() if e.get("event") == "consumer.lost"]
        assert [e["queue"] for e in lost] == [route.queue.name], lost
        replica.start()  # as its supervisor would
        await rig.settle(60)
        assert await replica.stop() == 0
    await _assert_holds(rig)
