"""What the benchmark watches while a workload runs, all on the benchmark's own monotonic clock:
when the samples projection passed each point of the log, and when each chatbot task reached a
worker queue of ours."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import asyncpg

from tests.integration.chatbot_support import bind_worker_queue

_CHECKPOINT = "SELECT transaction_id::text AS txid_text, position FROM projections.checkpoints WHERE projection = $1"


class CheckpointTimeline:
    """The samples projection's checkpoint, polled every `interval` seconds. The runner moves it in the
    same transaction that writes the rows, so the first poll that finds it at or past a message's
    event is when that message's sample rows became visible (to within one interval). projections.samples
    has no column saying when a row was written, hence the polling."""

    def __init__(self, dsn: str, projection: str = "samples", interval: float = 0.01) -> None:
        self._dsn, self._projection, self._interval = dsn, projection, interval
        self._times: list[float] = []
        self._checkpoints: list[tuple[int, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        self._task = asyncio.create_task(self._poll(conn), name="checkpoint-timeline")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                row = await conn.fetchrow(_CHECKPOINT, self._projection)
                now = time.monotonic()
                if row is not None:
                    checkpoint = (int(row["txid_text"]), int(row["position"]))
                    if not self._checkpoints or checkpoint > self._checkpoints[-1]:
                        self._times.append(now)
                        self._checkpoints.append(checkpoint)
                await asyncio.sleep(self._interval)
        finally:
            await conn.close()

    def passed_at(self, event: tuple[int, int]) -> float | None:
        """When the checkpoint first stood at or past `event` (transaction id, position); None: not yet."""
        index = bisect.bisect_left(self._checkpoints, event)
        return self._times[index] if index < len(self._times) else None


@dataclass(frozen=True)
class ReceivedTask:
    at: float
    sample_id: str
    scenario: str


class TaskInbox:
    """Chatbot tasks as a worker gets them: the test suite's worker queue (bound to chatbot.topic with
    `chatbot.sample.*`, which `chatbot.sample.batch` matches), consumed as they arrive."""

    def __init__(self) -> None:
        self.received: dict[str, ReceivedTask] = {}

    @contextlib.asynccontextmanager
    async def open(self, amqp: aio_pika.abc.AbstractConnection, exchange: str, name: str) -> AsyncIterator[None]:
        async with contextlib.asynccontextmanager(bind_worker_queue)(amqp, exchange, name) as queue:
            tag = await queue.consume(self._take, no_ack=True)
            try:
                yield
            finally:
                await queue.cancel(tag)

    async def _take(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        (task,) = json.loads(message.body)
        self.received.setdefault(task["taskId"], ReceivedTask(time.monotonic(), task["sampleId"], task["scenario"]))

    async def wait_for(self, task_ids: set[str], within: float) -> None:
        """Until every task in `task_ids` has arrived (the relay's confirm comes before our delivery), or
        `within` seconds have passed; a task that never came has no latency."""
        deadline = time.monotonic() + within
        while True:
            if task_ids <= self.received.keys() or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)
