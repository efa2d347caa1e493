"""The routing table: every exchange, queue and binding the service declares, readable at a glance.

Inbound queues are quorum queues (replicated, and `x-delivery-limit` bounds any redelivery loop)
that dead-letter to the fanout exchange `ledger.dlx`; fanout because a dead-lettered message keeps its
original routing key, which a direct exchange would drop. Queue arguments cannot change after the
first declaration (PRECONDITION_FAILED), so they are fixed here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class Route:
    name: str
    exchange: RabbitExchange
    queue: RabbitQueue
    routing_key: str


@dataclass(frozen=True)
class Topology:
    ingest: RabbitExchange
    webhooks: RabbitExchange
    state: RabbitExchange
    dead_letter_exchange: RabbitExchange
    dead_letter_queue: RabbitQueue
    chatbot: RabbitExchange
    routes: dict[str, Route]


def build_topology(prefix: str = "") -> Topology:
    """All names carry `prefix` (empty in production) so tests can share a broker safely."""
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

    def route(name: str, exchange: RabbitExchange, queue: str, routing_key: str) -> Route:
        return Route(name, exchange, inbound_queue(queue, routing_key), routing_key)

    routes = {
        "samples.crawled": route("samples.crawled", ingest, "ingest.samples", "samples.crawled"),
        "creators.crawled": route("creators.crawled", ingest, "ingest.creators", "creators.crawled"),
        "products.crawled": route("products.crawled", ingest, "ingest.products", "products.crawled"),
        "tiktok.shop": route("tiktok.shop", webhooks, "webhooks.tiktok", "tiktok.shop.*"),
        "sample.status_reported": route(
            "sample.status_reported", state, "state.status_reports", "sample.status_reported"
        ),
        "chatbot.result": route("chatbot.result", state, "state.chatbot_results", "chatbot.result"),
        "creator.messaging": route("creator.messaging", state, "state.creator_messaging", "creator.messaging"),
    }
    return Topology(
        ingest=ingest,
        webhooks=webhooks,
        state=state,
        dead_letter_exchange=dlx,
        dead_letter_queue=RabbitQueue(f"{prefix}ledger.dead", queue_type=QueueType.QUORUM),
        chatbot=RabbitExchange(f"{prefix}chatbot.topic", type=ExchangeType.TOPIC),
        routes=routes,
    )
