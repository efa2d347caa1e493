"""The service's own metrics, under `sample_ledger.`: counters added to as things happen, and gauges of
how far behind the projections and the outbox are, which a sampler loop reads from the database.
FastStream's middleware counts consumed messages itself (`messaging.process.messages`).

The gauges report cluster-wide values (the log and the outbox are shared): every replica reports the
same numbers, so aggregate them with max, not sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.inbound import Outcome, Taken
from service.errors import describe, is_transient
from service.progress import Folding, outbox_backlog, projection_progress

log = structlog.get_logger("sample_ledger.instruments")


@dataclass(frozen=True)
class Readings:
    """What the gauges report, as the sampler last read it. Empty before the first reading and after a
    failed one: a gauge that reports nothing is noticed, a stale one that says "no lag" is not."""

    lag: dict[str, int] = field(default_factory=dict)
    lag_seconds: dict[str, float] = field(default_factory=dict)
    outbox_backlog: int | None = None
    outbox_oldest_age_seconds: float | None = None


def readings_from(progress: Iterable[Any], backlog: Any) -> Readings:
    """The gauges' values from `projection_progress` rows and the `outbox_backlog` row; an age is 0
    when nothing is waiting."""
    rows = list(progress)
    return Readings(
        lag={row["name"]: int(row["lag"]) for row in rows},
        lag_seconds={row["name"]: _seconds(row["oldest_behind_seconds"]) for row in rows},
        outbox_backlog=int(backlog["waiting"]),
        outbox_oldest_age_seconds=_seconds(backlog["oldest_seconds"]),
    )


def _seconds(value: Any) -> float:
    return max(float(value), 0.0) if value is not None else 0.0  # PostgreSQL's now() may trail a fresh row's


class Instruments:
    """Every `sample_ledger.*` instrument of one meter (the API's no-op meter when telemetry is off)."""

    def __init__(self, meter: Meter) -> None:
        self.readings = Readings()
        self._recorded = meter.create_counter(
            "sample_ledger.messages.recorded", unit="{message}",
            description="Inbound messages recorded as an event (outcome new) or recognised as recorded before "
            "(outcome duplicate), by the input's routing key",
        )  # fmt: skip
        self._dead_lettered = meter.create_counter(
            "sample_ledger.messages.dead_lettered", unit="{message}",
            description="Inbound messages the service sent to ledger.dlx, by reason (x-ledger-reason)",
        )  # fmt: skip
        self._tasks_published = meter.create_counter(
            "sample_ledger.chatbot.tasks_published", unit="{task}",
            description="Chatbot tasks the broker confirmed and the relay recorded as published, by scenario",
        )  # fmt: skip
        meter.create_observable_gauge(
            "sample_ledger.projection.lag", [self._lag], unit="{event}",
            description="Events after the projection's checkpoint, of any type (the count stops at 100,000)",
        )  # fmt: skip
        meter.create_observable_gauge(
            "sample_ledger.projection.lag_seconds", [self._lag_seconds], unit="s",
            description="Age of the oldest event the projection has not applied yet; 0 when caught up",
        )  # fmt: skip
        meter.create_observable_gauge(
            "sample_ledger.outbox.backlog", [self._backlog], unit="{task}",
            description="Chatbot tasks in the outbox not yet confirmed by the broker",
        )  # fmt: skip
        meter.create_observable_gauge(
            "sample_ledger.outbox.oldest_age_seconds", [self._oldest_age], unit="s",
            description="Age of the oldest chatbot task not yet confirmed by the broker; 0 when none waits",
        )  # fmt: skip

    def count_taken(self, routing_key: str, taken: Taken) -> None:
        """`routing_key` is the input's binding key (`tiktok.shop.*` for every webhook), so the number of
        series stays that of the inputs."""
        if taken.outcome is Outcome.DEAD_LETTERED:
            self._dead_lettered.add(1, {"reason": taken.reason or "unknown", "routing_key": routing_key})
        else:
            self._recorded.add(1, {"outcome": str(taken.outcome), "routing_key": routing_key})

    def count_published(self, scenarios: Sequence[str]) -> None:
        for scenario in scenarios:
            self._tasks_published.add(1, {"scenario": scenario})

    async def sample(self, engine: AsyncEngine, projections: Sequence[Folding]) -> None:
        """Read what the gauges report; on failure they report nothing until a reading succeeds. An
        outage is only logged at debug level (the recorder warns about it already); anything else is
        raised, for the loop to log."""
        try:
            async with engine.connect() as conn:
                progress = await projection_progress(conn, projections)
                backlog = await outbox_backlog(conn)
        except Exception as exc:
            self.readings = Readings()
            if not is_transient(exc):
                raise
            log.debug("telemetry.gauges_unread", error=describe(exc))
            return
        self.readings = readings_from(progress, backlog)  # one assignment: an export never sees half a reading

    def _lag(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(lag, {"projection": name}) for name, lag in self.readings.lag.items()]

    def _lag_seconds(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(age, {"projection": name}) for name, age in self.readings.lag_seconds.items()]

    def _backlog(self, _: CallbackOptions) -> Iterable[Observation]:
        backlog = self.readings.outbox_backlog
        return [] if backlog is None else [Observation(backlog)]

    def _oldest_age(self, _: CallbackOptions) -> Iterable[Observation]:
        age = self.readings.outbox_oldest_age_seconds
        return [] if age is None else [Observation(age)]
