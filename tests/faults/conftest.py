"""The fault suite's harness: the service as a subprocess behind proxies of our own, a worker queue,
a recording publisher, and a wait for everything to settle. The short variants run in the normal
test command; `FAULTS=long` runs the long ones (see docs/reliability.md)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.topology import Topology, build_topology
from service.read_models import all_projections
from service.runner import catch_up
from service.settings import Settings
from tests.faults.checker import Verdict, check_invariants, queue_counts, recorded_message_ids
from tests.faults.proxy import FaultProxy
from tests.faults.publisher import APP_KEY, APP_SECRET, RecordingPublisher
from tests.faults.service_process import ServiceProcess, service_env
from tests.faults.settling import outstanding_work, wait_for_consumers

LONG = os.environ.get("FAULTS") == "long"


def scale(short: int, long: int) -> int:
    return long if LONG else short


@dataclass
class Rig:
    """Everything one fault scenario drives and observes."""

    settings: Settings
    engine: AsyncEngine
    amqp: aio_pika.abc.AbstractRobustConnection
    topology: Topology
    database_proxy: FaultProxy
    broker_proxy: FaultProxy
    workers: aio_pika.abc.AbstractQueue
    publisher: RecordingPublisher
    log_dir: Path
    replicas: list[ServiceProcess] = field(default_factory=list)
    delivered_task_ids: set[str] = field(default_factory=set)
    scenario: str = ""
    faults: str = ""
    recovery_seconds: float | None = None

    def describe(self, scenario: str, faults: str) -> None:
        """What this run is, for the reliability table."""
        self.scenario, self.faults = scenario, faults

    def replica(self, **env: str) -> ServiceProcess:
        """A new replica that reaches PostgreSQL and RabbitMQ only through the proxies."""
        db = make_url(self.settings.database_url).set(host="127.0.0.1", port=self.database_proxy.port)
        amqp = make_url(self.settings.amqp_url.replace("amqp://", "postgresql://", 1))  # parse host/port alike
        amqp_url = self.settings.amqp_url.replace(f"{amqp.host}:{amqp.port}", f"127.0.0.1:{self.broker_proxy.port}")
        process = ServiceProcess(
            service_env(
                db.render_as_string(hide_password=False),
                amqp_url,
                self.settings.amqp_prefix,
                TIKTOK_APP_KEY=APP_KEY,
                TIKTOK_APP_SECRET=APP_SECRET,
                **env,
            ),
            self.log_dir / f"replica-{len(self.replicas)}.log",
        )
        self.replicas.append(process)
        return process

    async def wait_for_topology(self, timeout: float = 60) -> None:
        """Until every inbound queue has a consumer (nothing sent from now on is unroutable)."""
        await wait_for_consumers(self.amqp, self.inbound_queues(), timeout)

    async def take_delivered_tasks(self) -> None:
        while (message := await self.workers.get(fail=False, no_ack=True)) is not None:
            self.delivered_task_ids.add(str(message.message_id))

    async def progress(self) -> dict[str, object]:
        """What is still outstanding: unrecorded messages, projection lag, unpublished tasks."""
        recorded = await recorded_message_ids(self.engine)
        outstanding = await outstanding_work(self.engine, all_projections(self.settings))
        await self.take_delivered_tasks()
        return {
            "unrecorded": sum(1 for s in self.publisher.sent if recorded[s.message.message_id] == 0),
            "lag": outstanding.lag,
            "unpublished": outstanding.unpublished,
            "due": outstanding.due,
            "running": [r.running() for r in self.replicas],
            "queues (ready, consumers)": {
                q: c
                for q, c in (
                    await queue_counts(self.amqp, [*self.inbound_queues(), self.topology.dead_letter_queue.name])
                ).items()
                if c != (0, 0)
            },
        }

    async def _queue_counts(self) -> dict[str, tuple[int, int]]:
        return await queue_counts(self.amqp, [*self.inbound_queues(), self.topology.dead_letter_queue.name])

    def inbound_queues(self) -> list[str]:
        return [r.queue.name for r in self.topology.routes.values()]

    async def _due_detail(self) -> str:
        """For a schedule that stays due: its row, its outbox rows and the chatbot events about it."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("""
                SELECT s.sample_id, s.scenario, s.state, s.due_at, s.run_count, s.skip_reason,
                       (SELECT json_agg(json_build_object('run', o.run_no, 'pub', o.publication,
                                                          'published', o.published_at IS NOT NULL))
                        FROM eventstore.chatbot_outbox o WHERE o.sample_id = s.sample_id AND o.scenario = s.scenario),
                       (SELECT json_agg(json_build_object('type', e.event_type, 'data', e.data) ORDER BY e.position)
                        FROM eventstore.events e WHERE e.event_type LIKE 'chatbot.%'
                          AND e.data->>'sample_id' = s.sample_id AND e.data->>'scenario' = s.scenario)
                FROM projections.chatbot_schedules s WHERE s.state = 'pending' AND s.due_at <= now() LIMIT 3
            """))).all()  # fmt: skip
        return f"due schedules: {[tuple(r) for r in rows]}"

    async def settled(self) -> bool:
        """Every sent message recorded, every projection at the head, every task published and taken."""
        now = await self.progress()
        lagging = any(dict(now["lag"]).values())  # type: ignore[call-overload]
        return now["unrecorded"] == 0 and not lagging and now["unpublished"] == 0 and now["due"] == 0

    async def settle(self, timeout: float) -> float:
        """Wait until settled; the seconds it took (after the last fault: the time to recover)."""
        started = time.monotonic()
        while not await self.settled():
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"not settled after {timeout:.0f}s: {await self.progress()}; {await self._due_detail()}"
                )
            await asyncio.sleep(0.5)
        self.recovery_seconds = time.monotonic() - started
        return self.recovery_seconds

    async def verdict(self) -> Verdict:
        """Check the invariants once every replica has stopped: first apply what the last replica
        appended while stopping (what its next start would do), then compare with a rebuild."""
        assert not any(r.running() for r in self.replicas), "stop the replicas first"
        for projection in all_projections(self.settings):
            await catch_up(self.engine, projection)
        await self.take_delivered_tasks()
        dead = []
        channel = await self.amqp.channel()
        try:
            queue = await channel.get_queue(self.topology.dead_letter_queue.name, ensure=True)
            while (message := await queue.get(fail=False, no_ack=True)) is not None:
                dead.append(message)
        finally:
            await channel.close()
        verdict = await check_invariants(self.amqp, self.engine, self.settings, self.topology,
                                         self.publisher.sent, dead, self.delivered_task_ids)  # fmt: skip
        self._report(verdict)
        return verdict

    def _report(self, verdict: Verdict) -> None:
        """One JSON line per scenario into $FAULTS_RESULTS, which `make faults` turns into the table."""
        if path := os.environ.get("FAULTS_RESULTS"):
            row = {"scenario": self.scenario, "messages": len(self.publisher.sent), "faults": self.faults,
                   "invariants": verdict.results, "recovery_seconds": self.recovery_seconds,
                   "scale": "long" if LONG else "short"}  # fmt: skip
            with Path(path).open("a") as out:
                out.write(json.dumps(row) + "\n")


def _host_port(url: str) -> tuple[str, int]:
    parsed = make_url(url.replace("amqp://", "postgresql://", 1))
    return parsed.host or "127.0.0.1", int(parsed.port or 5672)


@pytest.fixture
async def rig(
    settings: Settings, engine: AsyncEngine, amqp: aio_pika.abc.AbstractRobustConnection, tmp_path: Path
) -> AsyncIterator[Rig]:
    database_proxy = await FaultProxy(*_host_port(settings.database_url)).start()
    broker_proxy = await FaultProxy(*_host_port(settings.amqp_url)).start()
    channel = await amqp.channel()
    topic = await channel.declare_exchange(f"{settings.amqp_prefix}chatbot.topic", aio_pika.ExchangeType.TOPIC,
                                           durable=True)  # fmt: skip
    workers = await channel.declare_queue(f"{settings.amqp_prefix}workers-{uuid.uuid4().hex[:6]}")
    await workers.bind(topic, "chatbot.sample.*")
    rig = Rig(settings, engine, amqp, build_topology(settings.amqp_prefix), database_proxy, broker_proxy, workers,
              RecordingPublisher(amqp, settings.amqp_prefix), tmp_path)  # fmt: skip
    try:
        yield rig
    finally:
        for replica in rig.replicas:
            replica.kill()
        await workers.delete(if_unused=False, if_empty=False)
        await channel.close()
        await database_proxy.close()
        await broker_proxy.close()


Check = Callable[[], bool]
