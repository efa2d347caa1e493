"""A publisher that records exactly what it sent, and the mixed workload it sends.

The workload is generated from a seed: crawl pages of new and moving samples, signed TikTok
webhooks, seller-side status reports, chatbot worker results and operator opt-outs. Every message
has its own message id; the checker compares the log with `sent`, not with the generator.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aio_pika

from events.webhooks import expected_signature

APP_KEY, APP_SECRET = "fault_app_key", "fault_app_secret"
STATUSES = ["To review", "Ready to ship", "Shipped", "Content pending", "Completed"]
T0 = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Message:
    exchange: str  # without the test prefix: ingest, webhooks or state
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    message: Message
    at: float


def _crawl_row(product: int, creator: int, status: str, at: datetime) -> dict[str, object]:
    return {
        "region": "MX", "platformProductId": f"17296{product:014d}", "productName": f"Producto {product}",
        "platformCreatorId": f"74922{creator:014d}", "platformCreatorUsername": f"creador{creator}",
        "status": status, "extractedTime": at.strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip


def mixed_workload(seed: int, count: int) -> list[Message]:
    """`count` messages: about 40 % crawl pages (5 rows), 20 % webhooks, 20 % status reports,
    10 % worker results, 10 % opt-outs; sample statuses move forward over time."""
    rng = random.Random(seed)
    creators, products = max(count // 10, 5), 7
    progress: dict[tuple[int, int], int] = {}
    messages: list[Message] = []
    for n in range(count):
        at = T0 + timedelta(minutes=n)
        kind = rng.random()
        mid = f"fault-{seed}-{n}"
        product, creator = rng.randrange(products), rng.randrange(creators)
        step = progress[(product, creator)] = min(progress.get((product, creator), -1) + 1, len(STATUSES) - 1)
        if kind < 0.4:
            rows = [_crawl_row(product, creator, STATUSES[step], at)]
            for _ in range(4):
                p, c = rng.randrange(products), rng.randrange(creators)
                rows.append(_crawl_row(p, c, STATUSES[progress.get((p, c), 0)], at))
            body: dict[str, object] = {
                "source": "fault_suite",
                "options": {"expandViewContent": rng.random() < 0.5},
                "rows": rows,
            }
            messages.append(Message("ingest", "samples.crawled", json.dumps(body).encode(), mid))
        elif kind < 0.6:
            raw = json.dumps({
                "type": 56, "tts_notification_id": f"9{seed:03d}{n:012d}", "shop_id": "7495123456789012345",
                "timestamp": int(at.timestamp()),
                "data": {"new_status": rng.choice(["SHIPPED", "CONTENT_PENDING", "COMPLETED"]),
                         "creator": {"creator_open_id": f"74922{creator:014d}"},
                         "product": {"id": f"17296{product:014d}", "sku_id": "1"}},
            }, separators=(",", ":")).encode()  # fmt: skip
            signature = expected_signature(APP_KEY, APP_SECRET, raw)
            messages.append(Message("webhooks", "tiktok.shop.56", raw, mid, {"authorization": signature}))
        elif kind < 0.8:
            body = {"region": "MX", "platformProductId": f"17296{product:014d}",
                    "platformCreatorId": f"74922{creator:014d}", "status": STATUSES[step],
                    "observedAt": at.isoformat(), "source": "seller_monitor"}  # fmt: skip
            messages.append(Message("state", "sample.status_reported", json.dumps(body).encode(), mid))
        elif kind < 0.9:
            body = {"taskId": f"unknown-task-{n}", "outcome": rng.choice(["sent", "failed", "skipped"]),
                    "retryable": rng.random() < 0.5, "at": at.isoformat()}  # fmt: skip
            messages.append(Message("state", "chatbot.result", json.dumps(body).encode(), mid))
        else:
            body = {"platformCreatorId": f"74922{creator:014d}", "optedOut": rng.random() < 0.3,
                    "reason": "fault suite", "at": at.isoformat()}  # fmt: skip
            messages.append(Message("state", "creator.messaging", json.dumps(body).encode(), mid))
    return messages


class RecordingPublisher:
    """Publishes persistent messages with confirms, and remembers each one it sent and when."""

    def __init__(self, connection: aio_pika.abc.AbstractConnection, prefix: str) -> None:
        self._connection = connection
        self._prefix = prefix
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self.sent: list[Sent] = []

    async def publish(self, message: Message) -> None:
        if self._channel is None or self._channel.is_closed:
            # An unroutable message must fail here, not vanish: the checker trusts `sent`.
            self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await self._channel.get_exchange(f"{self._prefix}ledger.{message.exchange}")
        await exchange.publish(
            aio_pika.Message(
                message.body,
                message_id=message.message_id,
                headers=dict(message.headers),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
            ),
            routing_key=message.routing_key,
            mandatory=True,
        )
        self.sent.append(Sent(message, time.monotonic()))

    async def publish_all(self, messages: list[Message]) -> None:
        for message in messages:
            await self.publish(message)
