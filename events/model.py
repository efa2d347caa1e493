"""The base of every event: a frozen pydantic model with a stable dotted name and an integer version.

Each event type is one class (in `sample_events`, `catalog_events`, `chatbot_events`) registered
under its name, so a stored row becomes a typed event in one place (`event_from_data`), after the
upcasters in `events.upcast` have rewritten older versions (`events.registry`). Inbound events are the message a
publisher sent: their stored data is the body exactly as received (unknown keys included), and the
model is the checked, typed view of it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, PrivateAttr
from pydantic.alias_generators import to_camel

from events import json_text

# Stored as `datetime.isoformat()` ("2026-04-20T03:15:42+00:00"), the form the log has always had.
IsoDatetime = Annotated[datetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str)]


def id_as_text(value: Any) -> Any:
    """Ids may arrive as JSON numbers; they are compared as text everywhere (a `before` validator)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class UnknownEventType(KeyError):
    """A stored event type that no class is registered for."""


class DomainEvent(BaseModel):
    """An event; subclasses set `type_name` (past tense, dotted) and `version`."""

    model_config = ConfigDict(frozen=True)

    type_name: ClassVar[str]
    version: ClassVar[int] = 1

    def to_data(self) -> dict[str, Any]:
        """The data column as stored."""
        return self.model_dump(mode="json")

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)


class InboundEvent(DomainEvent):
    """An inbound message recorded as it came: camelCase or snake_case keys, unknown keys kept."""

    model_config = ConfigDict(frozen=True, extra="allow", alias_generator=to_camel, populate_by_name=True)

    _body: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Self:
        """Check `data` (raises ValidationError) and keep it as the body to store."""
        event = cls.model_validate(data)
        event._body = data
        return event

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> Self:
        """Check a message as it arrives, types as JSON has them (strict: `"yes"` is no boolean, a
        number no time), and keep it as the body to store. Events read back from the log use the
        lenient `from_data`: what was once accepted stays readable."""
        event = cls.model_validate_json(json_text.dumps(body), strict=True)
        event._body = body
        return event

    def to_data(self) -> dict[str, Any]:
        return self._body if self._body is not None else self.model_dump(mode="json", by_alias=True)


EVENT_CLASSES: dict[str, type[DomainEvent]] = {}
E = TypeVar("E", bound=type[DomainEvent])


def registered(cls: E) -> E:
    """Class decorator: make `cls` the reading of its stored type name."""
    if cls.type_name in EVENT_CLASSES:
        raise ValueError(f"event type {cls.type_name} is registered twice")
    EVENT_CLASSES[cls.type_name] = cls
    return cls
