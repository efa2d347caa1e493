"""What every inbound message goes through: build its event, record it, then ack.

A message is acknowledged only after its event is committed or after it was dead-lettered with a
reason. Failures that may pass (database down, deadlock) are retried with backoff for as long as
they last; a message that can never succeed goes at once, unchanged, to `ledger.dlx` with
`x-ledger-reason`/`x-ledger-detail`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import structlog
from faststream.rabbit import RabbitBroker, RabbitExchange
from faststream.rabbit.message import RabbitMessage
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential_jitter

from events.recorded import NewEvent
from handlers.delivery import Delivery, EventBuilder, Unprocessable, delivery_of, describe
from handlers.ports import EventRecorder, IsTransient

log = structlog.get_logger("sample_ledger.inbound")


class Outcome(StrEnum):
    NEW = "new"  # recorded now
    DUPLICATE = "duplicate"  # recorded before (a redelivery or a republish): acknowledged, nothing new
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Taken:
    """What became of one delivery, for the service to count and trace: handlers know no telemetry."""

    outcome: Outcome
    reason: str | None = None  # the dead-letter reason (`x-ledger-reason`)

    @classmethod
    def dead_lettered(cls, reason: str) -> Taken:
        return cls(Outcome.DEAD_LETTERED, reason)


class InboundHandler:
    """Takes one delivery at a time; the recorder and the transient-failure test are injected."""

    def __init__(self, broker: RabbitBroker, recorder: EventRecorder, is_transient: IsTransient,
                 dead_letters: RabbitExchange) -> None:  # fmt: skip
        self._broker = broker
        self._recorder = recorder
        self._is_transient = is_transient
        self._dead_letters = dead_letters

    async def take(self, message: RabbitMessage, build_event: EventBuilder) -> Taken:
        """Record the delivery's event, or dead-letter it; what became of it (raises only when the
        dead-letter publish itself failed)."""
        delivery = delivery_of(message.raw_message)
        with structlog.contextvars.bound_contextvars(
            message_id=delivery.message_id or delivery.dedupe_key, routing_key=delivery.routing_key
        ):
            try:
                event = build_event(delivery)
                new = await self._record(event)
            except Unprocessable as bad:
                await self.dead_letter(delivery, bad.reason, bad.detail)
                return Taken.dead_lettered(bad.reason)
            except Exception as exc:
                await self.dead_letter(delivery, "handler_error", describe(exc))
                return Taken.dead_lettered("handler_error")
            log.info("message.recorded" if new else "message.duplicate", event_type=event.event_type)
            return Taken(Outcome.NEW if new else Outcome.DUPLICATE)

    async def _record(self, event: NewEvent) -> bool:
        """Retry a failure that may pass (database down, deadlock) until it passes or the service stops:
        an outage must not turn good messages into dead letters. The delivery stays unacknowledged
        meanwhile, so prefetch holds the rest back, and a stop hands it back to RabbitMQ."""
        try:  # the first attempt without tenacity's machinery: almost every message needs only one
            return await self._recorder.record(event)
        except Exception as failure:
            if not self._is_transient(failure):
                raise
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._is_transient),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            reraise=True,
            # Debug: in an outage every in-flight message retries; the recorder warns once per failed commit.
            before_sleep=lambda state: log.debug(
                "message.record_retry",
                attempt=state.attempt_number + 1,
                error=describe(exc) if state.outcome and (exc := state.outcome.exception()) else None,
            ),
        )
        await asyncio.sleep(random.uniform(0.1, 0.3))  # noqa: S311 (jitter) the first wait, which tenacity skips
        async for attempt in retrying:
            with attempt:
                return await self._recorder.record(event)
        raise AssertionError("unreachable")  # pragma: no cover

    async def dead_letter(self, delivery: Delivery, reason: str, detail: str) -> None:
        """Publish the message unchanged to the dead-letter exchange; raises if the broker refuses,
        so the delivery is rejected and the queue's own dead-lettering keeps it."""
        headers = {
            **delivery.headers,
            "x-ledger-reason": reason,
            "x-ledger-detail": detail[:500],
            "x-ledger-exchange": delivery.exchange,
            "x-ledger-routing-key": delivery.routing_key,
            "x-ledger-dead-lettered-at": datetime.now(UTC).isoformat(),
        }
        await self._broker.publish(
            delivery.body,
            exchange=self._dead_letters,
            routing_key=delivery.routing_key,
            headers=headers,
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            content_type="application/octet-stream",
            persist=True,
            mandatory=True,
        )
        log.warning("message.dead_lettered", reason=reason, detail=detail)
