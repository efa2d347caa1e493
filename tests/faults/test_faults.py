"""Fault scenarios against the service as a user runs it: a subprocess, real RabbitMQ and PostgreSQL,
faults injected by `kill -9` and by our proxies. After each, every invariant is checked with queries."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg

from service.ops.status import projection_progress
from service.read_models import all_projections
from tests.conftest import _admin, _db_url
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
    messages = mixed_workload(seed=2, count=scale(300, 5_000))
    replica = rig.replica()
    replica.start()
    await rig.wait_for_topology()
    publishing = await _publish_in_background(rig, messages, pace=0.002)
    await asyncio.sleep(1)
    rig.broker_proxy.cut()
    await asyncio.sleep(scale(4, 10))
    rig.broker_proxy.restore()
    await publishing
    took = await rig.settle(SETTLE_SECONDS)
    assert replica.running(), "the service died instead of reconnecting"
    assert replica.noisy_seconds() <= 2, f"{replica.noisy_seconds()} seconds with over 20 warnings: a hot loop"
    assert await replica.stop() == 0
    await _assert_holds(rig)
    assert took < SETTLE_SECONDS


async def test_database_outage_mid_flow_recovers_without_a_hot_loop(rig: Rig) -> None:
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


async def test_a_long_transaction_in_another_database_leaves_projection_lag_near_zero(
    rig: Rig, server_url: str
) -> None:
    other_name = f"sl_other_{int(time.time() * 1000) % 10**9}"
    await _admin(server_url, f'CREATE DATABASE "{other_name}"')
    other = await asyncpg.connect(_db_url(server_url, other_name))
    try:
        replica = rig.replica()
        replica.start()
        await rig.wait_for_topology()
        foreign = other.transaction()
        await foreign.start()
        await other.execute("CREATE TABLE held (n int); INSERT INTO held VALUES (1)")
        publishing = await _publish_in_background(rig, mixed_workload(seed=4, count=scale(200, 2_000)), 0.01)
        worst_lag = 0
        names = [p.name for p in all_projections(rig.settings)]
        while not publishing.done():
            async with rig.engine.connect() as conn:
                worst_lag = max(worst_lag, *(int(p["lag"]) for p in await projection_progress(conn, names)))
            await asyncio.sleep(0.5)
        await rig.settle(60)  # while the other database's transaction is still open
        await foreign.rollback()
        assert worst_lag < 100, f"projections trailed by {worst_lag} events while another database wrote"
        assert await replica.stop() == 0
        await _assert_holds(rig)
    finally:
        await other.close()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{other_name}" WITH (FORCE)')


async def test_duplicates_and_disorder_change_nothing(rig: Rig) -> None:
    """Every message twice, some long after later ones; both copies carry the same message id."""
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
