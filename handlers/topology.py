"""The routing table: every exchange, queue and binding the service declares, and for each input the
subscriber that takes it, the builder that checks it and the event it is recorded as, at a glance.
To add an input: write its event class (`events/`), its builder (`handlers/`), and one line here.

Inbound queues are quorum queues (replicated, and `x-delivery-limit` bounds any redelivery loop)
that dead-letter to the fanout exchange `ledger.dlx`; fanout because a dead-lettered message keeps its
original routing key, which a direct exchange would drop. Queue arguments cannot change after the
first declaration (PRECONDITION_FAILED), so they are fixed here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from events.catalog_events import CreatorBatchRecorded, CreatorMessagingChanged, ProductBatchRecorded
from events.chatbot_events import ChatbotResultReported
from events.model import DomainEvent
from events.sample_events import CrawlBatchRecorded, StatusReported, WebhookReceived
from handlers.crawl_batches import crawl_batch_event, creator_batch_event, product_batch_event
from handlers.delivery import EventBuilder
from handlers.reports import chatbot_result_event, creator_messaging_event, status_report_event
from handlers.webhooks import webhook_event_builder

DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class Route:
    name: str
    exchange: RabbitExchange
    queue: RabbitQueue
    routing_key: str
    subscriber: str  # the handler's name in logs and in the AsyncAPI document
    build: EventBuilder
    records: type[DomainEvent]


@dataclass(frozen=True)
class Topology:
    ingest: RabbitExchange
    webhooks: RabbitExchange
    state: RabbitExchange
    dead_letter_exchange: RabbitExchange
    dead_letter_queue: RabbitQueue
    chatbot: RabbitExchange
    routes: dict[str, Route]


def build_topology(prefix: str = "", webhook_app_key: str | None = None, webhook_app_secret: str | None = None
                   ) -> Topology:  # fmt: skip
    """All names carry `prefix` (empty in production) so tests can share a broker safely. Webhooks are
    checked against TikTok's signature when the app key and secret are given."""
    dlx = RabbitExchange(f"{prefix}ledger.dlx", type=ExchangeType.FANOUT)
    ingest = RabbitExchange(f"{prefix}ledger.ingest", type=ExchangeType.TOPIC)
    webhooks = RabbitExchange(f"{prefix}ledger.webhooks", type=ExchangeType.TOPIC)
    state = RabbitExchange(f"{prefix}ledger.state", type=ExchangeType.TOPIC)

    def inbound_queue(name: str, routing_key: str) -> RabbitQueue:
        return RabbitQueue(
            f"{prefix}ledger.{name}",
            queue_type=QueueType.QUORUM,
            routing_key=routing_key,
            arguments={"x-dead-letter-exchange": dlx.name, "x-delivery-limit": DELIVERY_LIMIT},
        )

    def route(exchange: RabbitExchange, queue: str, routing_key: str, subscriber: str, build: EventBuilder,
              records: type[DomainEvent]) -> Route:  # fmt: skip
        name = routing_key.removesuffix(".*")
        return Route(name, exchange, inbound_queue(queue, routing_key), routing_key, subscriber, build, records)

    webhook_event = webhook_event_builder(webhook_app_key, webhook_app_secret)
    table = [
        # exchange, queue, routing key, subscriber, builder, and the event a message is recorded as
        route(ingest, "ingest.samples", "samples.crawled",
              "on_samples_crawled", crawl_batch_event, CrawlBatchRecorded),
        route(ingest, "ingest.creators", "creators.crawled",
              "on_creators_crawled", creator_batch_event, CreatorBatchRecorded),
        route(ingest, "ingest.products", "products.crawled",
              "on_products_crawled", product_batch_event, ProductBatchRecorded),
        route(webhooks, "webhooks.tiktok", "tiktok.shop.*",
              "on_tiktok_shop_webhook", webhook_event, WebhookReceived),
        route(state, "state.status_reports", "sample.status_reported",
              "on_sample_status_reported", status_report_event, StatusReported),
        route(state, "state.chatbot_results", "chatbot.result",
              "on_chatbot_result", chatbot_result_event, ChatbotResultReported),
        route(state, "state.creator_messaging", "creator.messaging",
              "on_creator_messaging", creator_messaging_event, CreatorMessagingChanged),
    ]  # fmt: skip
    routes = {r.name: r for r in table}
    return Topology(
        ingest=ingest,
        webhooks=webhooks,
        state=state,
        dead_letter_exchange=dlx,
        dead_letter_queue=RabbitQueue(f"{prefix}ledger.dead", queue_type=QueueType.QUORUM),
        chatbot=RabbitExchange(f"{prefix}chatbot.topic", type=ExchangeType.TOPIC),
        routes=routes,
    )
