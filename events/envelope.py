"""Events as the store writes and reads them, and the catalogue of event type names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Stable dotted names with their current version. Inbound facts are named for what was received;
# derived facts for what the projections concluded.
CRAWL_BATCH_RECORDED = "sample.crawl_batch_recorded"
STATUS_REPORTED = "sample.status_reported"
WEBHOOK_RECEIVED = "webhook.received"
CREATOR_BATCH_RECORDED = "creator.crawl_batch_recorded"
PRODUCT_BATCH_RECORDED = "product.crawl_batch_recorded"
CREATOR_MESSAGING_CHANGED = "creator.messaging_changed"
CHATBOT_RESULT_REPORTED = "chatbot.result_reported"
SAMPLE_STATUS_CHANGED = "sample.status_changed"
SAMPLE_CONTENT_OBSERVED = "sample.content_observed"
CHATBOT_TASK_ISSUED = "chatbot.task_issued"
CHATBOT_DISPATCH_DEFERRED = "chatbot.dispatch_deferred"
CHATBOT_RETRY_ISSUED = "chatbot.task_retry_issued"
CHATBOT_TASK_PUBLISHED = "chatbot.task_published"

CURRENT_VERSION: dict[str, int] = {
    CRAWL_BATCH_RECORDED: 1,
    STATUS_REPORTED: 1,
    WEBHOOK_RECEIVED: 1,
    CREATOR_BATCH_RECORDED: 1,
    PRODUCT_BATCH_RECORDED: 1,
    CREATOR_MESSAGING_CHANGED: 1,
    CHATBOT_RESULT_REPORTED: 1,
    SAMPLE_STATUS_CHANGED: 1,
    SAMPLE_CONTENT_OBSERVED: 1,
    CHATBOT_TASK_ISSUED: 1,
    CHATBOT_DISPATCH_DEFERRED: 1,
    CHATBOT_RETRY_ISSUED: 1,
    CHATBOT_TASK_PUBLISHED: 1,
}


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended. `dedupe_key` makes an inbound message's append idempotent."""

    stream_id: str
    event_type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    dedupe_key: str | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    event_version: int | None = None
    # Personal data (WhatsApp numbers, e-mail) kept beside the event, in a column analysts cannot read.
    personal: dict[str, Any] | None = None

    @property
    def version(self) -> int:
        return self.event_version or CURRENT_VERSION.get(self.event_type, 1)


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    transaction_id: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    event_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    personal: dict[str, Any] | None = None


def derived_event_id(cause: uuid.UUID, name: str) -> uuid.UUID:
    """Derived events get ids from their cause, so re-deriving them (a rebuild) appends nothing new."""
    return uuid.uuid5(cause, name)
