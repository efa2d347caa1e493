"""The consumer watchdog: notices a consumer that the broker stopped feeding without saying so.

RabbitMQ cancels a consumer whose queue is deleted by sending Basic.Cancel, and aio-pika then
consumes again. For a quorum queue on RabbitMQ 3.10 no Basic.Cancel arrives: when the queue is
declared again, the broker keeps a phantom of the old consumer on the new queue that takes
deliveries and never passes them on. The queue shows a consumer, the messages sit unacknowledged,
and nothing in the client can tell. Only a message that should arrive and does not can.

So while an inbound queue is idle here (nothing in flight, nothing delivered for a probe interval),
the service publishes a probe to it through the default exchange. Any replica's consumer takes the
probe and acknowledges it without recording anything; any delivery counts as a sign of life. A
queue that stayed silent with nothing in flight while several confirmed probes went in has a dead
consumer, and the service exits non-zero so its supervisor starts it again: closing the channel
hands the stuck deliveries back, and the new consumer gets them.

Deliveries that are in flight (a database outage holds them, retrying) are life, not silence: a
consumer whose prefetch is full receives nothing new by design.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

# Marks a probe; its value names the replica that sent it (for the logs, nothing decides on it).
PROBE_HEADER = "x-sample-ledger-probe"
# Silent through this many confirmed probes, the oldest at least this many probe intervals ago.
PROBES_BEFORE_LOST = 3


@dataclass
class QueueActivity:
    last_delivery: float
    in_flight: int = 0
    probes_since_delivery: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class LostConsumer:
    queue: str
    silent_seconds: float
    probes: int


def lost_consumers(activity: Mapping[str, QueueActivity], now: float, probe_seconds: float) -> list[LostConsumer]:
    """Queues whose consumer is presumed dead: nothing in flight, and at least PROBES_BEFORE_LOST
    confirmed probes since the last delivery, the oldest sent PROBES_BEFORE_LOST intervals ago."""
    window = PROBES_BEFORE_LOST * probe_seconds
    return [
        LostConsumer(queue, round(now - seen.last_delivery, 1), len(seen.probes_since_delivery))
        for queue, seen in activity.items()
        if seen.in_flight == 0
        and len(seen.probes_since_delivery) >= PROBES_BEFORE_LOST
        and now - seen.probes_since_delivery[0] >= window
    ]


def probe_due(seen: QueueActivity, now: float, probe_seconds: float) -> bool:
    """Idle for an interval since the last delivery and the last probe: a busy queue needs none."""
    if seen.in_flight:
        return False
    last = max([seen.last_delivery, *seen.probes_since_delivery[-1:]])
    return now - last >= probe_seconds


class ConsumerWatch:
    """What each inbound queue's consumer received, for the watchdog loop."""

    def __init__(self, queues: list[str]) -> None:
        self.activity = {queue: QueueActivity(last_delivery=time.monotonic()) for queue in queues}

    def reset(self) -> None:
        """Count silence from now (the consumers have just started)."""
        for seen in self.activity.values():
            seen.last_delivery = time.monotonic()
            seen.probes_since_delivery.clear()

    @contextmanager
    def delivery(self, queue: str) -> Iterator[None]:
        seen = self.activity[queue]
        seen.in_flight += 1
        seen.last_delivery = time.monotonic()
        seen.probes_since_delivery.clear()
        try:
            yield
        finally:
            seen.in_flight -= 1
            seen.last_delivery = time.monotonic()

    def due(self, probe_seconds: float) -> list[str]:
        now = time.monotonic()
        return [queue for queue, seen in self.activity.items() if probe_due(seen, now, probe_seconds)]

    def probed(self, queue: str) -> None:
        """A probe to `queue` was confirmed by the broker."""
        self.activity[queue].probes_since_delivery.append(time.monotonic())

    def lost(self, probe_seconds: float) -> list[LostConsumer]:
        return lost_consumers(self.activity, time.monotonic(), probe_seconds)
