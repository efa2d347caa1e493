"""Group commit for inbound events: many deliveries, one transaction, then each handler acks its own.

Handlers call `record()` and wait; a single writer task takes everything queued while the previous
commit was in flight and appends it in one statement, which commits on its own (no BEGIN or COMMIT:
a third of the round trips of a commit). If that statement fails, the events are retried one by one
so a single poison event fails alone. Events the statement skipped are checked after the recorded
ones are answered: were they there before, or did they lose a race for their stream version?
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from events.recorded import NewEvent
from service.database import single_statements
from service.errors import describe, is_transient
from service.eventstore import check_skipped_are_duplicates, insert_events

log = structlog.get_logger("sample_ledger.recorder")

_Pending = tuple[NewEvent, "asyncio.Future[bool]"]


class Recorder:
    def __init__(
        self,
        engine: AsyncEngine,
        on_committed: Callable[[frozenset[str]], None] = lambda recorded_types: None,
        max_batch: int = 256,
    ) -> None:
        """`on_committed` is given the types of the events a commit recorded (not those that were
        already there), so that only the projections that fold them are woken."""
        self._engine = single_statements(engine)
        self._on_committed = on_committed
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._failed_commits = 0  # since the last warning: an outage is one line a second, not one per commit
        self._last_warning = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._write_forever(), name="recorder")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def record(self, event: NewEvent) -> bool:
        """Append `event` durably; True if new, False if it was recorded before. Raises on failure."""
        if self._task is None:
            raise RuntimeError("recorder is not running")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, future))
        return await future

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _warn_commit_failed(self, events: int, exc: BaseException) -> None:
        self._failed_commits += 1
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            log.warning("recorder.commit_failed", events=events, failed_commits=self._failed_commits,
                        error=describe(exc))  # fmt: skip
            self._failed_commits = 0
            self._last_warning = now

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            async with self._engine.connect() as conn:  # the append is one statement: atomic, durable when it returns
                inserted = await insert_events(conn, [event for event, _ in batch])
        except Exception as exc:
            await self._fail(batch, exc)
            return
        # The recorded events are committed: answered and announced now, whatever the check of the
        # skipped ones meets next (answering "already there" on a retry would wake nothing).
        recorded = [(event, future) for event, future in batch if event.event_id in inserted]
        for _, future in recorded:
            _settle(future, result=True)
        if recorded:
            self._on_committed(frozenset(event.event_type for event, _ in recorded))
        skipped = [(event, future) for event, future in batch if event.event_id not in inserted]
        if not skipped:
            return
        try:
            async with self._engine.connect() as conn:
                await check_skipped_are_duplicates(conn, [event for event, _ in skipped])
        except Exception as exc:
            await self._fail(skipped, exc)
            return
        for _, future in skipped:
            _settle(future, result=False)

    async def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        if len(batch) == 1 or is_transient(exc):
            # A database outage fails every event alike: isolating them would only multiply the
            # connection attempts. Each handler retries its own event with backoff.
            self._warn_commit_failed(len(batch), exc)
            for _, future in batch:
                _settle(future, exc=exc)
            return
        log.warning("recorder.batch_failed_isolating", events=len(batch), error=type(exc).__name__)
        for item in batch:
            await self._commit([item])


def _settle(future: asyncio.Future[bool], result: bool = False, exc: BaseException | None = None) -> None:
    if future.done():  # the waiting handler was cancelled (shutdown); its message will be redelivered
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
