"""Telemetry's pure parts, in memory: trace context as event metadata, parents and links from it, the
switch on OTEL_EXPORTER_OTLP_ENDPOINT, unsampled probes, and the `sample_ledger.*` instruments."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events.recorded import NewEvent, trace_context
from handlers.inbound import Outcome, Taken
from service.instruments import Readings, readings_from
from service.telemetry import (
    Telemetry,
    carrying_trace_context,
    current_trace_context,
    links_to,
    parent_from,
    service_resource,
    with_trace_context,
)

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE:032x}-{SPAN:016x}-01"


@pytest.fixture
def telemetry(spans: InMemorySpanExporter, metric_reader: InMemoryMetricReader) -> Iterator[Telemetry]:
    on = Telemetry.exporting(SimpleSpanProcessor(spans), metric_reader)
    yield on
    asyncio.run(on.shutdown())


def an_event(**metadata: Any) -> NewEvent:
    return NewEvent(stream_id="s-1", event_type="test.happened", data={}, metadata={"source": "test", **metadata})


def test_trace_context_is_what_the_metadata_carries_of_it() -> None:
    assert trace_context({"traceparent": TRACEPARENT, "tracestate": "k=v", "source": "x"}) == {
        "traceparent": TRACEPARENT,
        "tracestate": "k=v",
    }
    assert trace_context({"traceparent": TRACEPARENT, "tracestate": ""}) == {"traceparent": TRACEPARENT}
    assert trace_context({"traceparent": None, "correlation_id": "c"}) == {}


def test_an_event_gets_the_trace_context_merged_into_its_metadata_and_nothing_else_changes() -> None:
    event = an_event()
    traced = with_trace_context(event, {"traceparent": TRACEPARENT})
    assert traced.metadata == {"source": "test", "traceparent": TRACEPARENT}
    assert (traced.event_id, traced.data, traced.stream_id) == (event.event_id, event.data, event.stream_id)
    assert event.metadata == {"source": "test"}
    assert with_trace_context(event, {}) is event


def test_outside_a_span_there_is_no_trace_context_to_record() -> None:
    assert current_trace_context() == {}
    assert carrying_trace_context(lambda _: an_event())(None).metadata == {"source": "test"}


def test_a_builder_inside_a_span_records_that_span(telemetry: Telemetry) -> None:
    with telemetry.span("ledger.record") as span:
        event = carrying_trace_context(lambda _: an_event())(None)
    context = span.get_span_context()
    flags = int(context.trace_flags)
    assert flags & 0x01  # sampled
    assert event.metadata["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"


def test_a_span_continues_the_trace_its_parent_traceparent_names(
    telemetry: Telemetry, spans: InMemorySpanExporter
) -> None:
    with telemetry.span("chatbot.task publish", parent=parent_from({"traceparent": TRACEPARENT})):
        pass
    (published,) = spans.get_finished_spans()
    assert published.context is not None
    assert published.parent is not None
    assert (published.context.trace_id, published.parent.span_id) == (TRACE, SPAN)


@pytest.mark.parametrize("carrier", [{}, {"traceparent": None}, {"traceparent": "not-a-traceparent"}])
def test_no_usable_traceparent_starts_a_new_trace(carrier: dict[str, Any]) -> None:
    assert not trace.get_current_span(parent_from(carrier)).get_span_context().is_valid


def test_a_page_links_once_to_each_span_its_events_name() -> None:
    other = f"00-{TRACE + 1:032x}-{SPAN:016x}-01"
    links = links_to([{"traceparent": TRACEPARENT}, {"traceparent": TRACEPARENT}, {}, {"traceparent": other}])
    assert [(link.context.trace_id, link.context.span_id) for link in links] == [(TRACE, SPAN), (TRACE + 1, SPAN)]


def test_off_there_is_no_middleware_and_a_span_is_nothing_at_all() -> None:
    off = Telemetry.off()
    assert not off.enabled
    assert off.broker_middlewares() == ()
    with off.span("ledger.record") as span, off.untraced():
        assert span is trace.INVALID_SPAN
        assert current_trace_context() == {}


def test_without_an_otlp_endpoint_telemetry_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert not Telemetry.from_environment().enabled
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")
    assert not Telemetry.from_environment().enabled


def test_the_sdk_switch_keeps_it_off_even_with_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not Telemetry.from_environment().enabled


def test_with_an_otlp_endpoint_it_exports_and_installs_faststreams_middleware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    on = Telemetry.from_environment()
    try:
        assert on.enabled
        (middleware,) = on.broker_middlewares()
        assert isinstance(middleware, RabbitTelemetryMiddleware)
    finally:
        asyncio.run(on.shutdown(within_seconds=0.5))  # nothing was recorded, nothing waits on the collector


def test_the_service_is_named_sample_ledger_unless_the_environment_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    resource = service_resource()
    assert resource.attributes["service.name"] == "sample-ledger"
    assert resource.attributes["deployment.environment"] == "staging"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=ledger-eu")
    assert service_resource().attributes["service.name"] == "ledger-eu"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ledger-mx")
    assert service_resource().attributes["service.name"] == "ledger-mx"


def test_what_starts_untraced_is_not_exported_and_tells_its_consumer_so(
    telemetry: Telemetry, spans: InMemorySpanExporter
) -> None:
    with telemetry.untraced(), telemetry.span("probe publish"):
        headers = current_trace_context()
    assert spans.get_finished_spans() == ()
    assert headers["traceparent"].endswith("-00")  # not sampled: a consumer continuing it samples nothing
    with telemetry.span("probe process", parent=parent_from(headers)):
        pass
    assert spans.get_finished_spans() == ()


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    (dict(p.attributes or {}), getattr(p, "value", None)) for p in metric.data.data_points
                ]
    return found


def test_each_outcome_of_a_delivery_is_counted_where_it_belongs(
    telemetry: Telemetry, metric_reader: InMemoryMetricReader
) -> None:
    for taken in (Taken(Outcome.NEW), Taken(Outcome.NEW), Taken(Outcome.DUPLICATE), Taken.dead_lettered("too_large")):
        telemetry.instruments.count_taken("samples.crawled", taken)
    telemetry.instruments.count_taken("tiktok.shop.*", Taken.dead_lettered("invalid_signature"))
    telemetry.instruments.count_published(["shipped", "shipped", "no_content"])
    found = points(metric_reader)
    assert sorted((a["outcome"], v) for a, v in found["sample_ledger.messages.recorded"]) == [
        ("duplicate", 1),
        ("new", 2),
    ]
    assert sorted((a["reason"], a["routing_key"], v) for a, v in found["sample_ledger.messages.dead_lettered"]) == [
        ("invalid_signature", "tiktok.shop.*", 1),
        ("too_large", "samples.crawled", 1),
    ]
    assert sorted((a["scenario"], v) for a, v in found["sample_ledger.chatbot.tasks_published"]) == [
        ("no_content", 1),
        ("shipped", 2),
    ]


def test_the_gauges_report_the_last_reading_and_nothing_before_one(
    telemetry: Telemetry, metric_reader: InMemoryMetricReader
) -> None:
    before = points(metric_reader)
    assert not before.get("sample_ledger.projection.lag")
    assert not before.get("sample_ledger.outbox.backlog")
    progress = [
        {"name": "samples", "lag": 12, "oldest_behind_seconds": 3.5},
        {"name": "chatbot", "lag": 0, "oldest_behind_seconds": None},
    ]
    telemetry.instruments.readings = readings_from(progress, {"waiting": 2, "oldest_seconds": 61.0})
    found = points(metric_reader)
    assert sorted((a["projection"], v) for a, v in found["sample_ledger.projection.lag"]) == [
        ("chatbot", 0),
        ("samples", 12),
    ]
    assert sorted((a["projection"], v) for a, v in found["sample_ledger.projection.lag_seconds"]) == [
        ("chatbot", 0.0),
        ("samples", 3.5),
    ]
    assert found["sample_ledger.outbox.backlog"] == [({}, 2)]
    assert found["sample_ledger.outbox.oldest_age_seconds"] == [({}, 61.0)]


def test_an_empty_outbox_is_zero_old_and_a_clock_skew_is_no_negative_age() -> None:
    readings = readings_from([{"name": "samples", "lag": 1, "oldest_behind_seconds": -0.002}],
                             {"waiting": 0, "oldest_seconds": None})  # fmt: skip
    assert readings == Readings(lag={"samples": 1}, lag_seconds={"samples": 0.0}, outbox_backlog=0,
                                outbox_oldest_age_seconds=0.0)  # fmt: skip
