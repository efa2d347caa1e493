"""Composition root: builds the broker, the subscribers and the background workers from settings."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiormq.exceptions import AMQPConnectionError, AuthenticationError, ProbableAuthenticationError
from faststream import FastStream, StreamMessage
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from pamqp.commands import Basic
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.inbound import InboundHandler, Outcome, Taken
from handlers.topology import Route, Topology, build_topology
from service.consumer_watch import PROBE_HEADER, ConsumerWatch
from service.database import create_engine, redacted_amqp
from service.dispatcher import Dispatcher
from service.errors import describe, is_transient
from service.garbage import tune_for_folding
from service.loops import Loop
from service.read_models import all_projections
from service.recorder import Recorder
from service.relay import OutboxRelay, RelayReport
from service.runner import Projection, ProjectionRunner
from service.settings import Settings
from service.telemetry import Telemetry, carrying_trace_context

log = structlog.get_logger("sample_ledger.app")

# Graceful stop: in-flight handlers get this long to finish; what is still running is cancelled,
# never acked, and RabbitMQ redelivers it.
GRACEFUL_TIMEOUT_SECONDS = 20.0
# `run`'s exit code when a consumer was lost (service/consumer_watch.py); 1 is a failed start.
EXIT_CONSUMER_LOST = 3


@dataclass
class Service:
    settings: Settings
    topology: Topology
    broker: RabbitBroker
    app: FastStream
    telemetry: Telemetry = field(default_factory=Telemetry.off)
    engine: AsyncEngine | None = None
    recorder: Recorder | None = None
    runner: ProjectionRunner | None = None
    dispatcher: Dispatcher | None = None
    relay: OutboxRelay | None = None
    loops: list[Loop] = field(default_factory=list)
    stopped: bool = False
    stop_workers: Callable[[], Awaitable[None]] | None = None
    exit_code: int = 0

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT, or until the service cannot go on (a lost consumer); the workers
        are stopped however FastStream's own shutdown went. Returns the process's exit code."""
        tune_for_folding()
        try:
            await self.app.run()
        finally:
            if self.stop_workers is not None:
                await self.stop_workers()
        return self.exit_code

    def fail(self, exit_code: int) -> None:
        """Stop gracefully and exit non-zero, for the supervisor to start the service again."""
        self.exit_code = exit_code
        self.app.exit()

    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def build_service(settings: Settings, projections: Sequence[Projection] | None = None,
                  telemetry: Telemetry | None = None) -> Service:  # fmt: skip
    """`telemetry` defaults to what the environment asks for (`Telemetry.from_environment`)."""
    telemetry = telemetry if telemetry is not None else Telemetry.from_environment()
    topology = build_topology(settings.amqp_prefix, settings.tiktok_app_key, settings.tiktok_app_secret)
    faststream_logger = logging.getLogger("sample_ledger.faststream")
    broker = RabbitBroker(
        settings.amqp_url,
        logger=faststream_logger,
        log_level=logging.DEBUG,  # per-message access lines cost throughput; ours say more
        graceful_timeout=GRACEFUL_TIMEOUT_SECONDS,
        reconnect_interval=2.0,
        middlewares=telemetry.broker_middlewares(),  # none when telemetry is off
        # No dependency injection: a handler is given the message itself (`delivered_as_is`). FastStream
        # resolved `Context("message")` by running a synchronous function in a worker thread for every
        # delivery, a seventh of the intake's time for small messages.
        apply_types=False,
    )
    app = FastStream(broker, logger=faststream_logger)
    service = Service(settings, topology, broker, app, telemetry)
    chosen = list(projections) if projections is not None else all_projections(settings)

    async def start_workers() -> None:
        service.engine = create_engine(settings.database_url)
        service.runner = ProjectionRunner(
            service.engine, chosen, settings.page_size, settings.projection_idle_poll_seconds, telemetry
        )
        service.recorder = Recorder(service.engine, on_committed=service.runner.nudge)
        service.recorder.start()
        service.tasks.append(asyncio.create_task(service.runner.run(), name="projections"))
        if settings.chatbot_dispatch_enabled:
            await start_chatbot(service.engine)
        if telemetry.enabled:
            start_gauge_sampler(service.engine)
        log.info("service.started", projections=[p.name for p in chosen], telemetry=telemetry.enabled)

    def start_gauge_sampler(engine: AsyncEngine) -> None:
        async def sample() -> bool:
            await telemetry.instruments.sample(engine, chosen)
            return False  # the next reading after the interval, not at once

        sampler = Loop("telemetry-gauges", sample, telemetry.gauge_interval_seconds)
        service.loops.append(sampler)
        service.tasks.append(asyncio.create_task(sampler.run(), name=sampler.name))

    async def start_chatbot(engine: AsyncEngine) -> None:
        service.dispatcher = Dispatcher(engine, settings, telemetry=telemetry)
        relay = service.relay = OutboxRelay(engine, settings.amqp_url, topology.chatbot.name, telemetry=telemetry)
        await relay.connect()
        runner = service.runner
        assert runner is not None

        # Whoever appends wakes the projections that fold it (the chatbot projection folds the
        # dispatcher's and the relay's events): a page it read while their transaction held the fence
        # found nothing, and would otherwise wait for its idle poll.
        async def relay_pass() -> bool:
            report = await relay.relay_once()
            runner.nudge(report.appended_types)
            return _went_out(report)

        relay_loop = Loop("relay", relay_pass, settings.chatbot_poll_seconds)

        async def dispatch() -> bool:
            assert service.dispatcher is not None
            report = await service.dispatcher.dispatch_once()
            if report.issued or report.retried:
                relay_loop.nudge()
            runner.nudge(report.appended_types)
            return report.total > 0

        dispatcher_loop = Loop("dispatcher", dispatch, settings.chatbot_poll_seconds)
        # A schedule the chatbot projection just made due is dispatched now, not at the next poll.
        runner.wake_after("chatbot", dispatcher_loop.nudge)
        chatbot_loops = [dispatcher_loop, relay_loop]
        service.loops.extend(chatbot_loops)
        service.tasks.extend(asyncio.create_task(loop.run(), name=loop.name) for loop in chatbot_loops)

    watch = ConsumerWatch([route.queue.name for route in topology.routes.values()])
    replica = f"{socket.gethostname()}:{os.getpid()}"

    async def start_watchdog() -> None:
        # After the subscribers started: silence before a consumer exists is not a lost consumer.
        watch.reset()
        watchdog = Loop("consumer-watch", watch_consumers, settings.consumer_probe_seconds / 2)
        service.loops.append(watchdog)
        service.tasks.append(asyncio.create_task(watchdog.run(), name=watchdog.name))

    async def watch_consumers() -> bool:
        probe_seconds = settings.consumer_probe_seconds
        for queue in watch.due(probe_seconds):
            with telemetry.untraced():  # a probe every few seconds per idle queue is no one's story
                confirmed = await _probe(broker, queue, replica)
            if not confirmed:
                return False  # the broker is away: no probe went in, so no silence is counted
            watch.probed(queue)
        if lost := watch.lost(probe_seconds):
            for consumer in lost:
                log.error("consumer.lost", queue=consumer.queue, silent_seconds=consumer.silent_seconds,
                          probes=consumer.probes, action="exit 3, for the supervisor to restart it")  # fmt: skip
            service.fail(EXIT_CONSUMER_LOST)
        return False

    async def declare_dead_letters() -> None:
        # Before any consumer starts: a dead letter published to an unbound fanout would be lost.
        await broker.connect()
        dead = await broker.declare_queue(topology.dead_letter_queue)
        exchange = await broker.declare_exchange(topology.dead_letter_exchange)
        await dead.bind(exchange)

    async def stop_workers() -> None:
        # Runs after the broker stopped consuming and in-flight handlers finished. Also called by
        # `run()` itself: FastStream skips its after_shutdown hooks when a stop overtakes an unfinished
        # start, so this must be safe to call twice.
        if service.stopped:
            return
        service.stopped = True
        if service.recorder is not None:
            await service.recorder.stop()
        if service.runner is not None:
            service.runner.stop()
        for loop in service.loops:
            loop.stop()
        await asyncio.gather(*service.tasks, return_exceptions=True)
        if service.relay is not None:
            await service.relay.close()
        if service.engine is not None:
            await service.engine.dispose()
        await telemetry.shutdown()  # last: what the workers did until now is exported
        log.info("service.stopped")

    async def connect_broker() -> None:
        # First: a refused login ends the start at once, before anything else waits on the broker.
        await connect_at_start(broker.connect, settings.amqp_url, settings.broker_startup_seconds)

    app.on_startup(connect_broker)
    app.on_startup(start_workers)
    app.on_startup(declare_dead_letters)
    app.after_startup(start_watchdog)
    app.after_shutdown(stop_workers)
    service.stop_workers = stop_workers

    def inbound() -> InboundHandler:
        assert service.recorder is not None, "workers start before the broker consumes"
        return InboundHandler(broker, service.recorder, is_transient, topology.dead_letter_exchange)

    for route in topology.routes.values():
        subscriber = broker.subscriber(
            route.queue,
            route.exchange,
            channel=Channel(prefetch_count=settings.ingest_prefetch),
            decoder=delivered_as_is,
            title=route.subscriber,
        )
        subscriber(_handler(route, inbound, watch, telemetry))
    return service


class BrokerUnreachable(AMQPConnectionError):
    """RabbitMQ could not be reached at start-up within the time allowed."""


async def connect_at_start(connect: Callable[[], Awaitable[object]], amqp_url: str, within_seconds: float) -> None:
    """Connect, retrying an outage (refused connection, unknown host) with backoff and a log line per
    retry, for at most `within_seconds`. A refused login is not an outage: it is raised at once."""
    deadline, delay, attempt = time.monotonic() + within_seconds, 0.5, 0
    while True:
        attempt += 1
        try:
            await connect()
            return
        except (AuthenticationError, ProbableAuthenticationError):
            raise
        except (AMQPConnectionError, OSError, TimeoutError) as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerUnreachable(
                    f"gave up after {within_seconds:g}s and {attempt} attempt(s); last: {describe(exc)}"
                ) from None
            delay = min(delay, left)
            log.warning("broker.connect_retry", attempt=attempt, next_delay_seconds=round(delay, 2),
                        broker=redacted_amqp(amqp_url), error=describe(exc))  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _went_out(report: RelayReport) -> bool:
    """Busy (run again at once) only when something went out: a pass that only failed waits a poll,
    or a broker outage would turn the relay into a hot loop."""
    return report.published > 0


async def delivered_as_is(message: StreamMessage[Any]) -> StreamMessage[Any]:
    """Handlers are given the message, not a decoded body: they parse the bytes themselves (FastStream's
    JSON decoding would fail before our dead-lettering could say why, and would lose the exact bytes)
    and read its headers and ids."""
    return message


async def _probe(broker: RabbitBroker, queue: str, replica: str) -> bool:
    """Publish a probe straight to `queue`; True once the broker confirmed it reached the queue."""
    try:
        confirmed = await broker.publish(
            b"", queue=queue, headers={PROBE_HEADER: replica}, message_id=f"probe-{uuid.uuid4()}",
            mandatory=True, timeout=5,
        )  # fmt: skip
    except Exception as exc:
        log.debug("consumer.probe_failed", queue=queue, error=describe(exc))
        return False
    return isinstance(confirmed, Basic.Ack)


def _handler(
    route: Route, inbound: Callable[[], InboundHandler], watch: ConsumerWatch, telemetry: Telemetry
) -> Callable[[RabbitMessage], Awaitable[None]]:
    # The event records the trace of its message (a child of FastStream's consume span), for what
    # follows from it to continue; off, the builder is left as it is.
    build_event = carrying_trace_context(route.build) if telemetry.enabled else route.build
    queue = route.queue.name

    async def handle(message: RabbitMessage) -> None:
        try:
            with watch.delivery(queue):
                if PROBE_HEADER in (message.raw_message.headers or {}):
                    return  # a sign of life for the watchdog, acknowledged and never recorded
                with telemetry.span("ledger.record", attributes={"sample_ledger.input": route.routing_key}) as span:
                    taken = await inbound().take(message, build_event)
                    span.set_attributes(_taken_attributes(taken))
                telemetry.instruments.count_taken(route.routing_key, taken)
        finally:
            # FastStream keeps the decoded body on the message, and `delivered_as_is` made that the
            # message itself: a reference cycle, which only a collection would free (bodies run to 16 MiB).
            message.clear_cache()

    handle.__name__ = route.subscriber  # the routing table's subscriber name, e.g. on_samples_crawled
    return handle


def _taken_attributes(taken: Taken) -> dict[str, str]:
    if taken.outcome is Outcome.DEAD_LETTERED:
        return {"sample_ledger.outcome": str(taken.outcome), "sample_ledger.dead_letter_reason": taken.reason or ""}
    return {"sample_ledger.outcome": str(taken.outcome)}
