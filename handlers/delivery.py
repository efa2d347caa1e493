"""An inbound delivery as the handlers see it, and the checks every body goes through.

A builder turns a delivery into the event it records, or raises `Unprocessable` with a reason (a
dead-letter reason of the contract) and a detail that never echoes values (they may be personal).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aio_pika.abc import AbstractIncomingMessage as IncomingMessage
from pydantic import ValidationError

from events.model import InboundEvent
from events.recorded import NewEvent

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
        """The publisher's message id, else a hash of routing key and body."""
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


def delivery_of(raw: IncomingMessage) -> Delivery:
    return Delivery(
        body=raw.body,
        routing_key=raw.routing_key or "",
        exchange=raw.exchange or "",
        message_id=raw.message_id or None,  # FastStream invents one when absent; we must not
        correlation_id=raw.correlation_id or None,
        headers=dict(raw.headers or {}),
        received_at=datetime.now(UTC),
    )


EventBuilder = Callable[[Delivery], NewEvent]
M = TypeVar("M", bound=InboundEvent)


def check_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise Unprocessable("too_large", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")


def parse_json_object(delivery: Delivery) -> dict[str, Any]:
    check_size(delivery.body)
    try:
        body = json.loads(delivery.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unprocessable("invalid_json", f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Unprocessable("invalid_schema", f"body must be a JSON object, got {type(body).__name__}")
    return body


def validated(model: type[M], body: dict[str, Any]) -> M:
    """The typed inbound event of a JSON object, or `invalid_schema` naming each bad field."""
    try:
        return model.from_data(body)
    except ValidationError as exc:
        raise Unprocessable("invalid_schema", schema_detail(exc)) from None


def inbound_event(delivery: Delivery, stream_id: str, event: InboundEvent, source: str,
                  personal: dict[str, Any] | None = None) -> NewEvent:  # fmt: skip
    """The record an inbound message becomes; its dedupe key makes redeliveries and republishes no-ops."""
    return NewEvent.of(event, stream_id=stream_id, metadata=delivery.metadata(source),
                       dedupe_key=delivery.dedupe_key, personal=personal)  # fmt: skip


def schema_detail(error: ValidationError) -> str:
    """Where and what, without echoing values (they may carry personal data)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5]]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def describe(exc: BaseException) -> str:
    """A short, secret-free description: the exception type and the first line of its message."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]
