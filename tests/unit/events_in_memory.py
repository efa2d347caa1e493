"""Builders for unit tests: deliveries as a handler receives them and events as the store reads them, in
memory (no broker, no database)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from events.model import DomainEvent, InboundEvent
from events.recorded import NewEvent, RecordedEvent
from events.sample_events import CrawlBatchRecorded, WebhookReceived
from events.webhooks import parse_exact
from handlers.delivery import Delivery

RECEIVED_AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def delivery(
    body: bytes | dict[str, Any] | list[Any],
    routing_key: str,
    *,
    message_id: str | None = "msg-1",
    headers: dict[str, Any] | None = None,
    exchange: str = "ledger.ingest",
) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(
        body=raw,
        routing_key=routing_key,
        exchange=exchange,
        message_id=message_id,
        correlation_id="corr-1",
        headers=headers or {},
        received_at=RECEIVED_AT,
    )


def recorded(event: DomainEvent, position: int, *, received_at: datetime = RECEIVED_AT) -> RecordedEvent:
    """`event` as the store would read it back at `position`: its data is the stored JSON form."""
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"unit-test-event:{position}")
    metadata = {"message_id": f"msg-{position}", "correlation_id": f"corr-{position}", "source": "unit-test",
                "received_at": received_at.isoformat()}  # fmt: skip
    new = NewEvent.of(event, stream_id=f"test-{position}", metadata=metadata, event_id=event_id)
    return RecordedEvent(
        position=position,
        transaction_id=1000 + position,
        event_id=new.event_id,
        stream_id=new.stream_id,
        stream_version=1,
        event_type=new.event_type,
        event_version=new.version,
        data=json.loads(json.dumps(new.data)),
        metadata=new.metadata,
        recorded_at=received_at,
    )


def inbound(model: type[InboundEvent], body: dict[str, Any]) -> InboundEvent:
    return model.from_data(body)


def crawl_row(status: str, extracted: str, *, creator: str = "7491112223334445556",
              product: str = "1729700000000000011", region: str = "MX", **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"region": region, "platformProductId": product, "platformCreatorId": creator, "status": status,
            "extractedTime": extracted, **extra}  # fmt: skip


def crawl(position: int, *rows: dict[str, Any], expanded: bool = False) -> RecordedEvent:
    body = {"source": "portal_tiktok_sample_crawler", "options": {"expandViewContent": expanded}, "rows": list(rows)}
    return recorded(inbound(CrawlBatchRecorded, body), position)


def type_56(position: int, new_status: str, at: datetime, *, product: str = "1729700000000000011",
            creator: str = "7491112223334445556", application: str | None = None) -> RecordedEvent:  # fmt: skip
    """A TikTok sample-application webhook (type 56), as the webhook builder records it."""
    data: dict[str, Any] = {"new_status": new_status, "creator": {"creator_open_id": creator},
                            "product": {"id": product}}  # fmt: skip
    if application:
        data["application_id"] = application
    body = json.dumps({"type": 56, "tts_notification_id": f"n-{position}", "shop_id": "7495123456789012345",
                       "timestamp": int(at.timestamp()), "data": data}, separators=(",", ":"))  # fmt: skip
    webhook = WebhookReceived(type=56, notification_id=f"n-{position}", shop_id="7495123456789012345",
                              creator_open_id=None, timestamp=at, signature_valid=None, body=body,
                              authorization=None, payload=parse_exact(body.encode()))  # fmt: skip
    return recorded(webhook, position)
