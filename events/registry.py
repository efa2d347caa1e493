"""Every event class, by its stored name: the one place a stored row becomes a typed event."""

from __future__ import annotations

from typing import Any

from events import catalog_events, chatbot_events, sample_events
from events.model import EVENT_CLASSES, DomainEvent, UnknownEventType

# Importing the modules registers their classes; naming them here keeps the imports used.
EVENT_MODULES = (sample_events, catalog_events, chatbot_events)


def event_from_data(event_type: str, data: dict[str, Any]) -> DomainEvent:
    """The typed event for a stored row whose data is at the current version."""
    try:
        cls = EVENT_CLASSES[event_type]
    except KeyError:
        raise UnknownEventType(f"no event class is registered for {event_type!r}") from None
    return cls.from_data(data)
