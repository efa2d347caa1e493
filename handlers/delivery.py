"""An inbound delivery as the handlers see it, and the checks every body goes through.

A builder turns a delivery into the event it records, or raises `Unprocessable` with a reason (a
dead-letter reason of the contract) and a detail that never echoes values (they may be personal).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aio_pika.abc import AbstractIncomingMessage as IncomingMessage
from pydantic import ValidationError

from events.model import InboundEvent
from events.recorded import NewEvent
from events.statuses import UnknownStatus

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


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ValueError("a number is out of range")
    return value


def read_json(body: bytes) -> Any:
    """UTF-8 JSON as RFC 8259 has it, or `invalid_json`. Python's own `json.loads` would also take
    UTF-16 and UTF-32, NaN and Infinity, and turn 1e400 into infinity: none of them is JSON the
    service can keep (jsonb refuses NaN and infinity), so each is refused here, as are integers over
    Python's digit limit and nesting deeper than the parser goes. A UTF-8 byte order mark is ignored."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable("invalid_json", f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except RecursionError:
        raise Unprocessable("invalid_json", "body is not JSON the service can read: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and the refusals above
        raise Unprocessable("invalid_json", f"body is not JSON: {exc}") from None


def parse_json_object(delivery: Delivery) -> dict[str, Any]:
    check_size(delivery.body)
    body = read_json(delivery.body)
    if not isinstance(body, dict):
        raise Unprocessable("invalid_schema", f"body must be a JSON object, got {type(body).__name__}")
    return body


_NUMBER_TEXT = re.compile(r"\s*[-+]?[0-9]+(?:\.[0-9]*)?\s*")


def validated(model: type[M], body: dict[str, Any]) -> M:
    """The typed inbound event of a JSON object, or `invalid_schema` naming each bad field.

    Types are checked as JSON has them (strict): `"yes"` is no boolean, `true` no status code and a
    number no time. Required text must not be blank, and a time must be ISO 8601 text that exists in UTC."""
    try:
        event = model.from_message(body)
    except ValidationError as exc:
        raise Unprocessable("invalid_schema", schema_detail(exc)) from None
    problems = [*_blank_required(event), *_unusable_times(event, body)]
    if problems:
        raise Unprocessable("invalid_schema", "; ".join(problems))
    return event


def _blank_required(event: InboundEvent) -> list[str]:
    return [
        f"{field.alias or name}: must not be blank"
        for name, field in type(event).model_fields.items()
        if field.is_required() and isinstance(value := getattr(event, name), str) and not value.strip()
    ]


def _unusable_times(event: InboundEvent, body: dict[str, Any]) -> list[str]:
    problems = []
    for name, field in type(event).model_fields.items():
        moment = getattr(event, name)
        if not isinstance(moment, datetime):
            continue
        key = field.alias or name
        sent = body.get(key, body.get(name))
        if isinstance(sent, str) and _NUMBER_TEXT.fullmatch(sent):
            problems.append(f"{key}: must be an ISO 8601 time, not a number")
            continue
        try:
            moment.astimezone(UTC) if moment.tzinfo else moment
        except OverflowError:  # "0001-01-01T00:00:00+14:00": projections read every time in UTC
            problems.append(f"{key}: no such time in UTC")
    return problems


def inbound_event(delivery: Delivery, stream_id: str, event: InboundEvent, source: str,
                  personal: dict[str, Any] | None = None) -> NewEvent:  # fmt: skip
    """The record an inbound message becomes; its dedupe key makes redeliveries and republishes no-ops."""
    return NewEvent.of(event, stream_id=stream_id, metadata=delivery.metadata(source),
                       dedupe_key=delivery.dedupe_key, personal=personal)  # fmt: skip


def schema_detail(error: ValidationError) -> str:
    """Where and what, without echoing values (they may carry personal data)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {_message(e)}" for e in error.errors()[:5]]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _message(error: Any) -> str:
    """Pydantic's message, except where a validator of ours put the value in it (an unknown status)."""
    if isinstance((error.get("ctx") or {}).get("error"), UnknownStatus):
        return "not a known status text or code 1-6"
    return str(error["msg"])


def describe(exc: BaseException) -> str:
    """A short, secret-free description: the exception type and the first line of its message (for a
    validation error, the fields and what is wrong with them, never their values)."""
    if isinstance(exc, ValidationError):
        return f"ValidationError: {schema_detail(exc)}"[:300]
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]
