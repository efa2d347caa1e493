"""Events as the store writes and reads them: the record around a typed event."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from events.identity import uuid5
from events.model import DomainEvent
from events.registry import event_from_data


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended. `dedupe_key` makes an inbound message's append idempotent."""

    stream_id: str
    event_type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    dedupe_key: str | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    version: int = 1
    # Personal data (WhatsApp numbers, e-mail) kept beside the event, in a column analysts cannot read.
    personal: dict[str, Any] | None = None

    @classmethod
    def of(cls, event: DomainEvent, *, stream_id: str, metadata: dict[str, Any], event_id: uuid.UUID | None = None,
           dedupe_key: str | None = None, personal: dict[str, Any] | None = None) -> NewEvent:  # fmt: skip
        """The record of a typed event: its stable name, its version and its data as stored."""
        return cls(
            stream_id=stream_id,
            event_type=event.type_name,
            data=event.to_data(),
            metadata=metadata,
            dedupe_key=dedupe_key,
            event_id=event_id or uuid.uuid4(),
            version=event.version,
            personal=personal,
        )


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    transaction_id: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    event_version: int
    data: dict[str, Any]  # already upcast to the current version
    metadata: dict[str, Any]
    recorded_at: datetime
    personal: dict[str, Any] | None = None

    @cached_property
    def event(self) -> DomainEvent:
        """The typed event; raises UnknownEventType or a ValidationError naming the bad field."""
        return event_from_data(self.event_type, self.data)

    @property
    def received_at(self) -> datetime:
        """When the service received the message this event records (derived events: when recorded)."""
        raw = self.metadata.get("received_at")
        return datetime.fromisoformat(raw) if raw else self.recorded_at


# W3C Trace Context (`traceparent`, and `tracestate` when there is one) as event metadata: an inbound
# event carries the trace of the message it records, and what follows from it carries that on, as
# `correlation_id` is carried, so one trace can show a message and everything it caused.
TRACE_CONTEXT_KEYS = ("traceparent", "tracestate")


def trace_context(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The trace context `metadata` carries, empty when it carries none (telemetry off when recorded)."""
    return {key: value for key in TRACE_CONTEXT_KEYS if isinstance(value := metadata.get(key), str) and value}


def derived_event_id(cause: uuid.UUID, name: str) -> uuid.UUID:
    """Derived events get ids from their cause, so re-deriving them (a rebuild) appends nothing new."""
    return uuid5(cause, name)


def decision_id(*parts: object) -> uuid.UUID:
    """A decision's id from its business key: the same decision can never be recorded twice."""
    return uuid5(uuid.NAMESPACE_URL, ":".join(str(p) for p in parts))
