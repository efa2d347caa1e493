"""The two ways a workload is sent to the running service.

Live: the service as it runs in production; from the first publish until it has settled, with the
latency of every message (publish → samples projection past its event) and of every chatbot task
(publish of the message that scheduled it → delivery to our worker queue), and the peak memory.

Held: the same messages into another fresh database, with the projections held back
(bench/holding.py): first the time until every message is in the log (ingest only), then, once
released, the time until every projection reaches the head (catch-up only).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import log_queries, waiting
from bench.cpu import cpu_seconds, spent
from bench.holding import projections_held
from bench.observe import CheckpointTimeline, TaskInbox
from bench.publishing import publish_all
from bench.sandbox import Sandbox
from bench.service_under_test import memory_kib, reset_peak_memory, service_under_test
from bench.workloads import Workload
from handlers.topology import build_topology
from service.database import create_engine
from service.read_models import all_projections
from service.runner import Projection
from service.settings import Settings
from tests.faults.publisher import RecordingPublisher
from tests.faults.service_process import ServiceProcess
from tests.faults.settling import wait_for_consumers


@dataclass
class Stage:
    """One running service on one database, and what the benchmark uses to feed and watch it."""

    database_url: str
    engine: AsyncEngine
    amqp: aio_pika.abc.AbstractRobustConnection
    publisher: RecordingPublisher
    processes: list[ServiceProcess]  # the replicas, all on this database and the same queues
    projections: list[Projection]
    inbox: TaskInbox
    idle_rss_kib: int  # resident memory of the largest replica once started, before any workload
    wait_limit: float  # seconds any one wait may take

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def rss_kib(self, field: str) -> int:
        """A `Vm…` figure of the largest replica: what each replica needs, and where a leak would show."""
        return max(memory_kib(pid, field) for pid in self.pids)


@asynccontextmanager
async def stage(
    box: Sandbox, database_url: str, log_path: Path, wait_limit: float, replicas: int = 1, **tunings: str
) -> AsyncIterator[Stage]:
    """`replicas` service processes on one database: they share the inbound queues as competing
    consumers, and each projection page is folded by whichever replica holds its checkpoint row."""
    settings = Settings(database_url=database_url, amqp_url=box.amqp_url, amqp_prefix=box.prefix)
    topology = build_topology(box.prefix)
    engine = create_engine(database_url, pool_size=4)
    amqp = await aio_pika.connect_robust(box.amqp_url)
    processes = [service_under_test(box, database_url, _replica_log(log_path, n), **tunings) for n in range(replicas)]
    for process in processes:
        process.start()
    try:
        await wait_for_consumers(amqp, [r.queue.name for r in topology.routes.values()], timeout=60)
        inbox = TaskInbox()
        # Bound before anything is sent: a task no queue receives waits in the outbox with backoff.
        async with inbox.open(amqp, topology.chatbot.name, f"{box.prefix}bench.workers.{uuid.uuid4().hex[:6]}"):
            yield Stage(database_url, engine, amqp, RecordingPublisher(amqp, box.prefix), processes,
                        all_projections(settings), inbox,
                        max(memory_kib(process.pid, "VmRSS") for process in processes), wait_limit)  # fmt: skip
    finally:
        for process in processes:
            await process.stop()
        await amqp.close()
        await engine.dispose()


def _replica_log(log_path: Path, n: int) -> Path:
    """live.log for the first replica, live.2.log for the second, …"""
    return log_path if n == 0 else log_path.with_suffix(f".{n + 1}{log_path.suffix}")


@dataclass(frozen=True)
class Latency:
    sent: float  # seconds after the workload's first publish
    seconds: float


@dataclass(frozen=True)
class LiveFigures:
    seconds: float  # first publish → settled
    publish_seconds: float  # first publish → last confirm
    visible: list[Latency]  # per message: publish → the samples projection past its event
    tasks: list[Latency]  # per task: publish of the message that scheduled it → delivered to our queue
    peak_rss_kib: int  # of the largest replica
    peak_is_per_workload: bool  # False: VmHWM could not be reset, it is the peak since the start
    events_by_type: dict[str, int]  # what the workload made the service append to the log
    cpu_seconds: dict[str, float]  # by process group, first publish → settled


async def live(stage: Stage, workload: Workload, rate: float | None = None) -> LiveFigures:
    since = await log_queries.head_position(stage.engine)
    per_workload = all([reset_peak_memory(pid) for pid in stage.pids])
    timeline = CheckpointTimeline(stage.database_url)
    await timeline.start()
    try:
        cpu_before, start = cpu_seconds(stage.pids), time.monotonic()
        began = await publish_all(stage.publisher, workload.messages, rate=rate)
        published = time.monotonic()
        done = await waiting.settled(stage.engine, stage.projections, since, len(workload.messages), stage.wait_limit)
        cpu = spent(cpu_before, cpu_seconds(stage.pids))
    finally:
        await timeline.stop()
    peak = stage.rss_kib("VmHWM")
    await stage.inbox.wait_for(await log_queries.issued_tasks_since(stage.engine, since), within=30)
    events = await log_queries.message_events_since(stage.engine, since)
    visible = [Latency(began[mid] - start, at - began[mid]) for mid, event in events.items()
               if mid in began and (at := timeline.passed_at(event)) is not None]  # fmt: skip
    causes = await log_queries.task_causes_since(stage.engine, since)
    tasks = [Latency(began[cause] - start, task.at - began[cause]) for task in stage.inbox.received.values()
             if task.at >= start and (cause := causes.get((task.sample_id, task.scenario))) in began]  # fmt: skip
    appended = await log_queries.events_by_type_since(stage.engine, since)
    return LiveFigures(done - start, published - start, visible, tasks, peak, per_workload, appended, cpu)


# The held stage's runner notices the release within this (the default, 0.5 s, would be part of every
# catch-up figure); a busy runner never sleeps, so the catch-up itself does not depend on it.
HELD_TUNINGS = {"PROJECTION_IDLE_POLL_SECONDS": "0.05"}


@dataclass(frozen=True)
class HeldFigures:
    ingest_seconds: float  # first publish → every message in the log, projections held
    catch_up_seconds: float  # release → every projection at the head
    catch_up_by_projection: dict[str, float]  # release → this projection at the head for good


async def held(stage: Stage, workload: Workload) -> HeldFigures:
    since = await log_queries.head_position(stage.engine)
    expected = len(workload.messages)
    async with projections_held(stage.engine, [p.name for p in stage.projections]):
        start = time.monotonic()
        await publish_all(stage.publisher, workload.messages)
        ingested = await waiting.recorded(stage.engine, since, expected, stage.wait_limit)
    released = time.monotonic()
    reached = await waiting.projections_at_head(stage.engine, stage.projections, stage.wait_limit)
    # The next workload starts from a quiet service: tasks dispatched, published, folded.
    await waiting.settled(stage.engine, stage.projections, since, expected, stage.wait_limit)
    by_projection = {p.name: round(reached[p.name] - released, 2) for p in stage.projections}
    return HeldFigures(ingested - start, reached[waiting.ALL] - released, by_projection)
