"""The outbox relay: publishes chatbot tasks to `chatbot.topic` and marks them only after the broker
confirmed them.

A batch is claimed with a lease (any number of replicas): its rows' next attempt moves `CLAIM_LEASE`
ahead and the claim commits at once. They are then published persistent, mandatory, with publisher
confirms and returns raised as errors, with no transaction open: the one that marks them published
also appends to the log, and an appending transaction held open for the broker's confirms would hold
every projection's read fence back for as long (seconds, when the broker is slow). A task no queue
receives is not delivered and is tried again later; a failure backs the row off exponentially (never
a hot loop). A crash between the claim and the mark leaves the row unmarked: once the lease has run
out it is published again under the same task id, which workers recognise.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import structlog
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential_jitter

from events import streams
from events.chatbot_events import ChatbotTaskPublished
from events.recorded import NewEvent, decision_id
from service.database import single_statements
from service.dispatcher import Clock, utc_now
from service.errors import describe
from service.eventstore import append_events
from service.telemetry import Telemetry, current_trace_context, parent_from

log = structlog.get_logger("sample_ledger.relay")

ROUTING_KEY = "chatbot.sample.batch"
MAX_BACKOFF = timedelta(minutes=5)
PUBLISH_TIMEOUT_SECONDS = 10
# Longer than a batch can take to publish (each publish gives up after PUBLISH_TIMEOUT_SECONDS, and
# they run together), so that another replica never takes a batch still in flight; short enough that
# a crash delays its tasks by half a minute at most.
CLAIM_LEASE = timedelta(seconds=3 * PUBLISH_TIMEOUT_SECONDS)

_CLAIM = text("""
    UPDATE eventstore.chatbot_outbox o SET next_attempt_at = :lease_until
    FROM (SELECT task_id, publication FROM eventstore.chatbot_outbox
          WHERE published_at IS NULL AND next_attempt_at <= :now
          ORDER BY next_attempt_at, created_at LIMIT :limit
          FOR UPDATE SKIP LOCKED) AS due
    WHERE o.task_id = due.task_id AND o.publication = due.publication
    RETURNING o.task_id, o.publication, o.scenario, o.body, o.attempts, o.traceparent, o.created_at
""")
_RELEASE = text("""
    UPDATE eventstore.chatbot_outbox o SET next_attempt_at = :now
    FROM unnest(CAST(:task_ids AS text[]), CAST(:publications AS int[])) AS p(task_id, publication)
    WHERE o.task_id = p.task_id AND o.publication = p.publication AND o.published_at IS NULL
""")
_PUBLISHED = text("""
    UPDATE eventstore.chatbot_outbox o SET published_at = :now, attempts = o.attempts + 1, last_error = NULL
    FROM unnest(CAST(:task_ids AS text[]), CAST(:publications AS int[])) AS p(task_id, publication)
    WHERE o.task_id = p.task_id AND o.publication = p.publication
""")
_FAILED = text("""
    UPDATE eventstore.chatbot_outbox SET attempts = attempts + 1, next_attempt_at = :retry_at, last_error = :error
    WHERE task_id = :task_id AND publication = :publication
      AND published_at IS NULL  -- another replica may have published it once this one's lease lapsed
""")


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s … capped at five minutes."""
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts, 16)))


@dataclass(frozen=True)
class RelayReport:
    published: int = 0
    failed: int = 0

    @property
    def appended_types(self) -> frozenset[str]:
        """The types of the events the pass appended, for the projections that fold them."""
        return frozenset({ChatbotTaskPublished.type_name}) if self.published else frozenset()


def _failures_to_record(
    failures: Sequence[tuple[Any, Exception]],
) -> tuple[list[tuple[Any, Exception]], list[Any]]:
    """The failures that back off, and the rows merely not sent. Each refused task backs off; when the
    broker itself is away, only the first task it failed does (the others were not refused, only not
    sent: their lease is released, and they go on the next pass without a backoff)."""
    refused = [(row, error) for row, error in failures if not _broker_unavailable(error)]
    unreachable = [(row, error) for row, error in failures if _broker_unavailable(error)]
    return refused + unreachable[:1], [row for row, _ in unreachable[1:]]


def _broker_unavailable(exc: BaseException) -> bool:
    """The connection or channel is gone, as opposed to one message the broker refused (unroutable)."""
    return isinstance(exc, ConnectionError | aio_pika.exceptions.AMQPConnectionError
                      | aio_pika.exceptions.ChannelInvalidStateError | asyncio.TimeoutError)  # fmt: skip


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, amqp_url: str, exchange_name: str, clock: Clock = utc_now,
                 batch: int = 50, telemetry: Telemetry | None = None) -> None:  # fmt: skip
        self._engine = engine
        self._single_statements = single_statements(engine)
        self._telemetry = telemetry or Telemetry.off()
        self._amqp_url = amqp_url
        self._exchange_name = exchange_name
        self._clock = clock
        self._batch = batch
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def connect(self, within_seconds: float = 30) -> None:
        async for attempt in AsyncRetrying(stop=stop_after_delay(within_seconds),
                                           wait=wait_exponential_jitter(max=5), reraise=True):  # fmt: skip
            with attempt:
                self._connection = await aio_pika.connect_robust(self._amqp_url)
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def relay_once(self) -> RelayReport:
        """Claim a batch of due rows, publish them at once and await their confirms together, then
        mark the confirmed ones in one statement: one round trip to the broker per batch, not per task,
        and no transaction open meanwhile."""
        now = self._clock()
        async with self._single_statements.connect() as conn:  # one statement, committed at once; appends nothing
            claimed = await conn.execute(_CLAIM, {"now": now, "lease_until": now + CLAIM_LEASE, "limit": self._batch})
            rows = sorted(claimed.mappings().all(), key=lambda row: (row["created_at"], row["task_id"]))
        if not rows:
            return RelayReport()
        errors = await asyncio.gather(*(self._attempt(row) for row in rows))
        confirmed = [row for row, error in zip(rows, errors, strict=True) if error is None]
        failures = [(row, error) for row, error in zip(rows, errors, strict=True) if error is not None]
        to_record, not_sent = _failures_to_record(failures)
        async with self._engine.begin() as conn:
            if confirmed:  # first: its append is the transaction's first write, which announces it as an appender
                await self.mark_published(conn, confirmed, now)
            for row, error in to_record:
                await self._failed(conn, row, now, error)
            if not_sent:
                await conn.execute(_RELEASE, {"now": now, **_keys(not_sent)})
        self._telemetry.instruments.count_published([row["scenario"] for row in confirmed])
        log.info("chatbot.relayed", published=len(confirmed), failed=len(failures))
        return RelayReport(len(confirmed), len(failures))

    async def _attempt(self, row: Any) -> Exception | None:
        try:
            await self.publish(row)
        except Exception as exc:
            return exc
        return None

    async def publish(self, row: Any) -> None:
        if self._exchange is None:
            raise ConnectionError("relay is not connected to RabbitMQ")
        the_task_id = row["task_id"]
        with self._publish_span(row):
            message = aio_pika.Message(
                json.dumps(row["body"], ensure_ascii=False).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=the_task_id,
                headers={"task_id": the_task_id, "task_count": 1, **self._trace_headers()},
            )
            await self._exchange.publish(message, routing_key=ROUTING_KEY, mandatory=True,
                                         timeout=PUBLISH_TIMEOUT_SECONDS)  # fmt: skip

    def _publish_span(self, row: Any) -> AbstractContextManager[Span]:
        """A span in the trace of the message that caused the task (the outbox row's `traceparent`), else
        in a new trace; it ends with the broker's confirm, or records why there was none."""
        if not self._telemetry.enabled:
            return nullcontext(INVALID_SPAN)
        return self._telemetry.span(
            "chatbot.task publish", parent=parent_from({"traceparent": row["traceparent"]}),
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "rabbitmq", "messaging.destination.name": self._exchange_name,
                        "messaging.rabbitmq.destination.routing_key": ROUTING_KEY,
                        "messaging.message.id": row["task_id"], "sample_ledger.chatbot.scenario": row["scenario"],
                        "sample_ledger.chatbot.publication": row["publication"]},
        )  # fmt: skip

    def _trace_headers(self) -> dict[str, str]:
        """The publish span as `traceparent`, for the worker's spans to continue; none when telemetry is off."""
        return current_trace_context() if self._telemetry.enabled else {}

    async def mark_published(self, conn: AsyncConnection, rows: Sequence[Any], now: datetime) -> None:
        """Record the publications, then mark the rows: the append comes first, as the transaction's
        first write, so that it announces itself as an appender (the trigger does) with no statement of
        its own, before anything else gives it a transaction id."""
        await append_events(conn, [NewEvent.of(
            published, stream_id=streams.chatbot_publication(published.task_id), metadata={"source": "relay"},
            event_id=decision_id(published.type_name, published.task_id, published.publication),
        ) for published in (ChatbotTaskPublished(task_id=r["task_id"], publication=r["publication"], at=now)
                            for r in rows)])  # fmt: skip
        await conn.execute(_PUBLISHED, {"now": now, **_keys(rows)})

    async def _failed(self, conn: AsyncConnection, row: Any, now: datetime, exc: Exception) -> None:
        retry_at = now + backoff(row["attempts"])
        log.warning(
            "chatbot.publish_failed", task_id=row["task_id"], error=describe(exc), retry_at=retry_at.isoformat()
        )
        await conn.execute(_FAILED, {"retry_at": retry_at, "error": describe(exc), "task_id": row["task_id"],
                                     "publication": row["publication"]})  # fmt: skip


def _keys(rows: Sequence[Any]) -> dict[str, list[Any]]:
    """Outbox rows' keys, as the array parameters of `_PUBLISHED` and `_RELEASE`."""
    return {"task_ids": [r["task_id"] for r in rows], "publications": [r["publication"] for r in rows]}
