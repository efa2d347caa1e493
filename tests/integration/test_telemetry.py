"""OpenTelemetry on the real broker and database: one trace follows a crawl message into its event, is
linked from the projection page that folds it, and reaches the published chatbot task's `traceparent`;
the counters and gauges report. With no OTLP endpoint configured, nothing of it exists."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from service.app import Service, build_service
from service.settings import Settings
from service.telemetry import Telemetry
from tests.integration.chatbot_support import bind_worker_queue, page
from tests.support import eventually, publish, rows, scalar

VALE = sample_id("MX", "1729700000000000011", "7491112223334445556")


def dispatching(settings: Settings) -> Settings:
    """Dispatch on the wall clock with quiet hours off, and probes often enough to be sure some ran."""
    return settings.model_copy(
        update={"chatbot_quiet_hours": "off", "chatbot_poll_seconds": 0.1, "consumer_probe_seconds": 0.2}
    )


@pytest.fixture
async def traced_service(
    settings: Settings, spans: InMemorySpanExporter, metric_reader: InMemoryMetricReader
) -> AsyncIterator[Service]:
    telemetry = Telemetry.exporting(SimpleSpanProcessor(spans), metric_reader, gauge_interval_seconds=0.2)
    svc = build_service(dispatching(settings), telemetry=telemetry)
    await svc.app.start()
    try:
        yield svc
    finally:
        await svc.app.stop()


async def workers_of(
    service: Service, amqp: aio_pika.abc.AbstractConnection
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    async for queue in bind_worker_queue(amqp, service.topology.chatbot.name, f"workers-{uuid.uuid4().hex[:8]}"):
        yield queue


@pytest.fixture
async def traced_workers(
    traced_service: Service, amqp: aio_pika.abc.AbstractConnection
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    async for queue in workers_of(traced_service, amqp):
        yield queue


async def one_task(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    async def take() -> aio_pika.abc.AbstractIncomingMessage | None:
        return await queue.get(fail=False, no_ack=True)

    message = await eventually(take, lambda got: got is not None, timeout=20)
    assert message is not None
    return message


async def shipped_after_a_first_sighting(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine, headers: dict[str, Any] | None
) -> None:
    """A known sample moving into `shipped` schedules a `shipped` task (a first sighting never does). The
    second crawl carries `headers`; it is published once the first is folded, so neither can overtake."""
    ingest = service.topology.ingest.name
    await publish(amqp, ingest, "samples.crawled", page("To review", "2026-05-01 10:00:00"), message_id="p1")
    await eventually(lambda: scalar(engine, "SELECT status FROM projections.samples"), lambda s: s == "to_review")
    await publish(amqp, ingest, "samples.crawled", page("Shipped", "2026-05-02 10:00:00"), message_id="p2",
                  headers=headers)  # fmt: skip


def trace_id_of(traceparent: str) -> int:
    return int(traceparent.split("-")[1], 16)


def span_id_of(traceparent: str) -> int:
    return int(traceparent.split("-")[2], 16)


def named(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name == name]


def data_points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """Every counter's and gauge's data points as (attributes, value), by metric name (histograms left out)."""
    found: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                values = [(dict(p.attributes or {}), p.value) for p in metric.data.data_points if hasattr(p, "value")]
                if values:
                    found.setdefault(metric.name, []).extend(values)
    return found


async def test_one_trace_follows_a_crawl_message_to_the_chatbot_task_it_causes(
    traced_service: Service,
    traced_workers: aio_pika.abc.AbstractQueue,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    spans: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> None:
    crawler_trace = secrets.randbits(128)
    crawler_traceparent = f"00-{crawler_trace:032x}-{secrets.randbits(64):016x}-01"
    await shipped_after_a_first_sighting(traced_service, amqp, engine, {"traceparent": crawler_traceparent})
    ingest = traced_service.topology.ingest.name
    await publish(amqp, ingest, "samples.crawled", page("Shipped", "2026-05-02 10:00:00"), message_id="p2")  # again
    await publish(amqp, ingest, "samples.crawled", b"{not json", message_id="bad")

    task = await one_task(traced_workers)
    assert set(task.headers) == {"task_id", "task_count", "traceparent"}
    task_traceparent = str(task.headers["traceparent"])
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM eventstore.events WHERE event_type = "
                                            "'chatbot.task_published'"), lambda n: n == 1)  # fmt: skip
    finished = spans.get_finished_spans()

    # FastStream's consume span of the crawl message continues the crawler's trace; so does the task.
    (consumed,) = [s for s in finished if s.name.endswith(" process") and s.context
                   and (s.attributes or {}).get("messaging.message.id") == "p2"
                   and s.context.trace_id == crawler_trace]  # fmt: skip
    assert consumed.context is not None
    assert trace_id_of(task_traceparent) == consumed.context.trace_id == crawler_trace

    # Recording it is a child of the consume span, and the event records that span's context.
    (recording,) = [s for s in named(finished, "ledger.record") if s.context and s.context.trace_id == crawler_trace
                    and (s.attributes or {}).get("sample_ledger.outcome") == "new"]  # fmt: skip
    assert recording.parent is not None
    assert recording.parent.span_id == consumed.context.span_id
    assert recording.context is not None
    (event,) = await rows(engine, "SELECT metadata FROM eventstore.events WHERE metadata->>'message_id' = 'p2'")
    assert trace_id_of(event["metadata"]["traceparent"]) == crawler_trace
    assert span_id_of(event["metadata"]["traceparent"]) == recording.context.span_id

    # The status change derived from it carries the same context; the page that folded the crawl links to it.
    (change,) = await rows(engine, "SELECT metadata FROM eventstore.events WHERE event_type = 'sample.status_changed'"
                                   " AND data->>'to_status' = 'shipped'")  # fmt: skip
    assert change["metadata"]["traceparent"] == event["metadata"]["traceparent"]
    pages = named(finished, "ledger.project samples")
    assert any(link.context.trace_id == crawler_trace for page_span in pages for link in page_span.links)
    assert any(link.context.trace_id == crawler_trace for page_span in named(finished, "ledger.project chatbot")
               for link in page_span.links)  # fmt: skip

    # The dispatcher put it on the task's decision and outbox row; the relay's publish span continues it.
    (issued,) = await rows(engine, "SELECT metadata FROM eventstore.events WHERE event_type = 'chatbot.task_issued'")
    assert issued["metadata"]["traceparent"] == event["metadata"]["traceparent"]
    assert await scalar(engine, "SELECT traceparent FROM eventstore.chatbot_outbox") == event["metadata"]["traceparent"]
    (published,) = named(finished, "chatbot.task publish")
    assert published.context is not None
    assert published.context.trace_id == crawler_trace
    assert published.parent is not None
    assert published.parent.span_id == recording.context.span_id
    assert span_id_of(task_traceparent) == published.context.span_id

    # Counters: two crawls recorded, one duplicate, one dead letter, one task published.
    def counted() -> dict[str, list[tuple[dict[str, Any], float]]]:
        return data_points(metric_reader)

    # The watchdog's probes run (FastStream counts their publishes, to the default exchange) and make no trace.
    async def probes_published() -> set[str]:
        return {a["messaging.destination.name"] for a, _ in counted().get("messaging.publish.messages", [])}

    await eventually(probes_published, lambda found: any(name.startswith("default.") for name in found))
    finished = spans.get_finished_spans()
    assert not [s for s in finished if s.name.startswith("default.") or "probe-" in str(s.attributes)]

    points = counted()
    assert sorted((attributes["outcome"], value) for attributes, value in points["sample_ledger.messages.recorded"]
                  if attributes["routing_key"] == "samples.crawled") == [("duplicate", 1), ("new", 2)]  # fmt: skip
    assert points["sample_ledger.messages.dead_lettered"] == [({"reason": "invalid_json",
                                                                "routing_key": "samples.crawled"}, 1)]  # fmt: skip
    assert points["sample_ledger.chatbot.tasks_published"] == [({"scenario": "shipped"}, 1)]
    assert sum(value for _, value in points["messaging.process.messages"]) >= 4

    # Gauges: per projection, and the outbox, read by the sampler.
    async def gauges() -> dict[str, list[tuple[dict[str, Any], float]]]:
        return counted()

    names = ("sample_ledger.projection.lag", "sample_ledger.projection.lag_seconds", "sample_ledger.outbox.backlog",
             "sample_ledger.outbox.oldest_age_seconds")  # fmt: skip

    def outbox_empty(found: dict[str, list[tuple[dict[str, Any], float]]]) -> bool:  # once a reading saw the commit
        return [value for _, value in found.get("sample_ledger.outbox.backlog", [])] == [0]

    latest = await eventually(gauges, lambda found: all(found.get(name) for name in names) and outbox_empty(found))
    assert {a["projection"] for a, _ in latest["sample_ledger.projection.lag"]} == {"samples", "catalog", "chatbot"}
    assert all(value >= 0 for _, value in latest["sample_ledger.projection.lag_seconds"])
    assert [value for _, value in latest["sample_ledger.outbox.oldest_age_seconds"]] == [0]


async def test_without_an_otlp_endpoint_there_is_no_middleware_and_no_trace_context(
    settings: Settings, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    service = build_service(dispatching(settings))
    assert not service.telemetry.enabled
    assert not [m for m in service.broker.middlewares if isinstance(m, RabbitTelemetryMiddleware)]
    await service.app.start()
    try:
        async for workers in workers_of(service, amqp):
            await shipped_after_a_first_sighting(service, amqp, engine, headers={})
            task = await one_task(workers)
            assert set(task.headers) == {"task_id", "task_count"}
    finally:
        await service.app.stop()
    assert await scalar(engine, "SELECT count(*) FROM eventstore.events WHERE metadata ? 'traceparent'") == 0
    assert await scalar(engine, "SELECT count(*) FROM eventstore.chatbot_outbox WHERE traceparent IS NULL") == 1


async def test_a_crawl_message_without_a_traceparent_starts_the_trace_its_task_continues(
    traced_service: Service,
    traced_workers: aio_pika.abc.AbstractQueue,
    amqp: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    spans: InMemorySpanExporter,
) -> None:
    await shipped_after_a_first_sighting(traced_service, amqp, engine, headers=None)
    task = await one_task(traced_workers)
    (event,) = await rows(engine, "SELECT metadata FROM eventstore.events WHERE metadata->>'message_id' = 'p2'")
    assert trace_id_of(str(task.headers["traceparent"])) == trace_id_of(event["metadata"]["traceparent"])
    (consumed,) = [s for s in spans.get_finished_spans() if s.name.endswith(" process") and s.attributes
                   and s.attributes.get("messaging.message.id") == "p2"]  # fmt: skip
    assert consumed.context is not None
    assert consumed.context.trace_id == trace_id_of(event["metadata"]["traceparent"])
