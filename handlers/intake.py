"""What every inbound message goes through: size check, JSON, validation, record, then ack.

A message is acknowledged only after its event is committed or after it was dead-lettered with a
reason. Failures that may pass (database down, deadlock) are retried with backoff; a message that
can never succeed goes at once, unchanged, to `ledger.dlx` with `x-ledger-reason`/`x-ledger-detail`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage as IncomingMessage
from faststream.rabbit import RabbitBroker, RabbitExchange
from faststream.rabbit.message import RabbitMessage
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from events.envelope import NewEvent
from service.errors import describe, is_transient
from service.recorder import Recorder

log = structlog.get_logger("sample_ledger.intake")

MAX_BODY_BYTES = 16 * 1024 * 1024


class Unprocessable(Exception):
    """The message can never succeed; it is dead-lettered with `reason` and a human `detail`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Delivery:
    """The parts of an AMQP delivery the service looks at."""

    body: bytes
    routing_key: str
    exchange: str
    message_id: str | None
    correlation_id: str | None
    headers: dict[str, Any]
    received_at: datetime

    @property
    def dedupe_key(self) -> str:
        """The publisher's message id, else a hash of routing key and body (CONTRACT.md)."""
        if self.message_id:
            return f"{self.routing_key}/{self.message_id}"
        digest = hashlib.sha256(self.routing_key.encode() + b"\n" + self.body).hexdigest()
        return f"{self.routing_key}/sha256:{digest}"

    def metadata(self, source: str | None) -> dict[str, Any]:
        return {
            "message_id": self.message_id or self.dedupe_key.split("/", 1)[1],
            "correlation_id": self.correlation_id,
            "causation_id": None,
            "source": source,
            "received_at": self.received_at.isoformat(),
            "exchange": self.exchange,
            "routing_key": self.routing_key,
        }


def delivery_of(message: RabbitMessage) -> Delivery:
    return delivery_of_incoming(message.raw_message)


def delivery_of_incoming(raw: IncomingMessage) -> Delivery:
    return Delivery(
        body=raw.body,
        routing_key=raw.routing_key or "",
        exchange=raw.exchange or "",
        message_id=raw.message_id or None,  # FastStream invents one when absent; we must not
        correlation_id=raw.correlation_id or None,
        headers=dict(raw.headers or {}),
        received_at=datetime.now(UTC),
    )


def parse_json_object(delivery: Delivery) -> dict[str, Any]:
    if len(delivery.body) > MAX_BODY_BYTES:
        raise Unprocessable("too_large", f"body is {len(delivery.body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        body = json.loads(delivery.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unprocessable("invalid_json", f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Unprocessable("invalid_schema", f"body must be a JSON object, got {type(body).__name__}")
    return body


EventBuilder = Callable[[Delivery], NewEvent]


def inbound_event(delivery: Delivery, stream_id: str, event_type: str, data: dict[str, Any], source: str,
                  personal: dict[str, Any] | None = None) -> NewEvent:  # fmt: skip
    """The event an inbound message becomes; its dedupe key makes redeliveries and republishes no-ops."""
    return NewEvent(stream_id=stream_id, event_type=event_type, data=data, metadata=delivery.metadata(source),
                    dedupe_key=delivery.dedupe_key, personal=personal)  # fmt: skip


def schema_detail(error: ValidationError) -> str:
    """Where and what, without echoing values (they may carry personal data)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5]]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class Intake:
    def __init__(self, broker: RabbitBroker, recorder: Recorder, dead_letters: RabbitExchange, attempts: int) -> None:
        self._broker = broker
        self._recorder = recorder
        self._dead_letters = dead_letters
        self._attempts = attempts

    async def take(self, message: RabbitMessage, build_event: EventBuilder) -> None:
        delivery = delivery_of(message)
        with structlog.contextvars.bound_contextvars(
            message_id=delivery.message_id or delivery.dedupe_key, routing_key=delivery.routing_key
        ):
            try:
                event = build_event(delivery)
                new = await self._record(event)
            except Unprocessable as bad:
                await self.dead_letter(delivery, bad.reason, bad.detail)
                return
            except Exception as exc:
                await self.dead_letter(delivery, "handler_error", describe(exc))
                return
            log.info("message.recorded" if new else "message.duplicate", event_type=event.event_type)

    async def _record(self, event: NewEvent) -> bool:
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "message.record_retry",
                attempt=state.attempt_number,
                error=describe(exc) if state.outcome and (exc := state.outcome.exception()) else None,
            ),
        )
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
