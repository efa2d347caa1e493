"""OpenTelemetry traces and metrics, exported over OTLP (HTTP) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
and nothing at all otherwise.

Enabled, it builds SDK tracer and meter providers of its own (not the process-wide ones: a process may
build several services, as the tests do) and FastStream's RabbitMQ middleware, which makes a span for
each consumed message and counts them. A message's trace context then travels as data, in W3C Trace
Context form (`traceparent`, `tracestate`): into its event's metadata, into the events derived from it,
into the chatbot outbox row and onto the task's AMQP headers. Each step runs in another transaction,
loop or replica, so only data can carry it; then one trace shows a crawl row becoming a chatbot message.

Disabled, no SDK object is made and no middleware installed, tracer and meter are the API's no-op ones,
and the callers skip extracting and injecting contexts (`if telemetry.enabled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from events.recorded import NewEvent
from service.instruments import Instruments

if TYPE_CHECKING:  # the SDK and FastStream's middleware are loaded only when telemetry is on
    from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
DEFAULT_SERVICE_NAME = "sample-ledger"
INSTRUMENTATION_NAME = "sample_ledger"
# How often the gauges' values are read from the database (the exporter sends them on its own period).
GAUGE_INTERVAL_SECONDS = 10.0
# How long a stopping service waits for the last spans and metrics to be exported.
SHUTDOWN_SECONDS = 5.0

log = structlog.get_logger("sample_ledger.telemetry")

# The header names are part of the contract (`traceparent` on chatbot tasks), so W3C Trace Context is
# used as such rather than whatever OTEL_PROPAGATORS names.
_W3C = TraceContextTextMapPropagator()


class Telemetry:
    """Tracer, meter and instruments; `enabled` says whether anything is exported."""

    def __init__(self, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None,
                 gauge_interval_seconds: float = GAUGE_INTERVAL_SECONDS) -> None:  # fmt: skip
        """Off without providers; `from_environment()` and `exporting()` build an enabled one."""
        self.enabled = tracer_provider is not None and meter_provider is not None
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self.meter: metrics.Meter = metrics.NoOpMeter(INSTRUMENTATION_NAME)
        if tracer_provider is not None and meter_provider is not None:
            self.tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME)
            self.meter = meter_provider.get_meter(INSTRUMENTATION_NAME)
        self.instruments = Instruments(self.meter)
        self.gauge_interval_seconds = gauge_interval_seconds

    @classmethod
    def off(cls) -> Telemetry:
        """Nothing exported: no SDK object, no middleware, the API's no-op tracer and meter."""
        return cls()

    @classmethod
    def from_environment(cls) -> Telemetry:
        """Enabled when OTEL_EXPORTER_OTLP_ENDPOINT is set (and OTEL_SDK_DISABLED is not true); the SDK
        reads the other OTEL_* variables itself (headers, timeouts, export interval, sampler, resource)."""
        if not os.environ.get(ENDPOINT_VARIABLE, "").strip() or _sdk_disabled():
            return cls.off()
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        return cls.exporting(BatchSpanProcessor(OTLPSpanExporter()), metric_reader)

    @classmethod
    def exporting(cls, spans: SpanProcessor, metric_reader: MetricReader,
                  gauge_interval_seconds: float = GAUGE_INTERVAL_SECONDS) -> Telemetry:  # fmt: skip
        """Enabled, sending spans to `spans` and metrics to `metric_reader` (the tests pass in-memory ones)."""
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        resource = service_resource()
        # Shut down by `shutdown()` when the service stops, not at interpreter exit, which an unreachable
        # collector would hold up.
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        tracer_provider.add_span_processor(spans)
        meter_provider = MeterProvider(metric_readers=[metric_reader], resource=resource, shutdown_on_exit=False)
        return cls(tracer_provider, meter_provider, gauge_interval_seconds)

    def broker_middlewares(self) -> Sequence[RabbitTelemetryMiddleware]:
        """FastStream's own: a consume span per message (continuing the publisher's `traceparent`), a
        publish span per `broker.publish` (dead letters), and the `messaging.*` metrics. None when off."""
        if not self.enabled:
            return ()
        from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

        return (RabbitTelemetryMiddleware(tracer_provider=self._tracer_provider, meter_provider=self._meter_provider,
                                          include_messages_counters=True),)  # fmt: skip

    def span(self, name: str, *, parent: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
             attributes: Attributes = None, links: Sequence[Link] = ()) -> AbstractContextManager[Span]:  # fmt: skip
        """A span made current for the block (a child of `parent`, else of the current span); when
        telemetry is off, a no-op that does not even touch the context."""
        if not self.enabled:
            return contextlib.nullcontext(trace.INVALID_SPAN)
        return self.tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes, links=links)

    def untraced(self) -> AbstractContextManager[None]:
        """Spans started inside are not sampled, nor are those of whoever continues their trace from the
        headers: for the consumer watchdog's probes, which would otherwise make a trace every few seconds
        per idle queue."""
        return _unsampled() if self.enabled else contextlib.nullcontext()

    async def shutdown(self, within_seconds: float = SHUTDOWN_SECONDS) -> None:
        """Export what is still buffered, then stop, waiting at most `within_seconds`: the exporters retry
        an unreachable collector for longer than a supervisor's grace period. What is left runs on in a
        daemon thread, which ends with the process."""
        if not self.enabled:
            return
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def shut_down() -> None:
            try:
                if self._tracer_provider is not None:
                    self._tracer_provider.shutdown()
                if self._meter_provider is not None:
                    self._meter_provider.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(_settle, finished)

        threading.Thread(target=shut_down, name="telemetry-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(finished, within_seconds)
        except TimeoutError:
            log.warning("telemetry.shutdown_timed_out", seconds=within_seconds,
                        detail="spans or metrics not yet exported are dropped")  # fmt: skip


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # not given up on
        future.set_result(None)


def service_resource() -> Resource:
    """The SDK's resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME), named `sample-ledger` unless
    those name the service."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):  # the SDK's stand-in
        return detected.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return detected


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def current_trace_context() -> dict[str, str]:
    """The current span as W3C Trace Context headers: `traceparent`, and `tracestate` when it has one.
    Empty outside a span."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


def parent_from(carrier: Mapping[str, Any]) -> Context:
    """A context whose span is the one `carrier`'s `traceparent` names, for a span that continues that
    trace; an empty context (a new trace) when it names none or is malformed."""
    return _W3C.extract({key: value for key, value in carrier.items() if isinstance(value, str)})


def links_to(carriers: Iterable[Mapping[str, Any]]) -> list[Link]:
    """One link per distinct span the carriers name (a batch's derived events share their cause's);
    carriers naming none are skipped."""
    links: dict[tuple[int, int], Link] = {}
    for carrier in carriers:
        span_context = trace.get_current_span(parent_from(carrier)).get_span_context()
        if span_context.is_valid:
            links.setdefault((span_context.trace_id, span_context.span_id), Link(span_context))
    return list(links.values())


def with_trace_context(event: NewEvent, carrier: Mapping[str, str]) -> NewEvent:
    """`event` with the trace context merged into its metadata (the event itself is frozen)."""
    return replace(event, metadata={**event.metadata, **carrier}) if carrier else event


D = TypeVar("D")


def carrying_trace_context(build: Callable[[D], NewEvent]) -> Callable[[D], NewEvent]:
    """An event builder whose events carry the trace context current when they are built (handlers
    stay free of telemetry: the service wraps their builders)."""

    def build_traced(delivery: D) -> NewEvent:
        return with_trace_context(build(delivery), current_trace_context())

    return build_traced


@contextlib.contextmanager
def _unsampled() -> Iterator[None]:
    """The current span becomes one of an unsampled trace: under the SDK's default parent-based sampler,
    the spans started inside inherit the decision, and so do the consumer's spans, which continue the
    `traceparent` (flags 00) the publish puts in the headers."""
    unsampled = trace.SpanContext(trace_id=secrets.randbits(128) or 1, span_id=secrets.randbits(64) or 1,
                                  is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT))  # fmt: skip
    token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(unsampled)))
    try:
        yield
    finally:
        otel_context.detach(token)
