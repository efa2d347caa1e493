"""The consumer watchdog's decisions: when to probe an inbound queue, when its consumer is lost."""

from __future__ import annotations

from service.consumer_watch import PROBES_BEFORE_LOST, QueueActivity, lost_consumers, probe_due

PROBE = 3.0


def test_an_idle_queue_is_probed_once_an_interval_has_passed() -> None:
    seen = QueueActivity(last_delivery=100.0)
    assert not probe_due(seen, 102.9, PROBE)
    assert probe_due(seen, 103.0, PROBE)


def test_probes_are_spaced_by_the_interval() -> None:
    seen = QueueActivity(last_delivery=100.0, probes_since_delivery=[103.0])
    assert not probe_due(seen, 105.0, PROBE)
    assert probe_due(seen, 106.0, PROBE)


def test_a_queue_with_a_delivery_in_flight_is_not_probed() -> None:
    assert not probe_due(QueueActivity(last_delivery=0.0, in_flight=1), 1_000.0, PROBE)


def test_silence_through_enough_confirmed_probes_is_a_lost_consumer() -> None:
    probes = [103.0, 106.0, 109.0]
    seen = {"q": QueueActivity(last_delivery=100.0, probes_since_delivery=probes)}
    assert lost_consumers(seen, 103.0 + PROBES_BEFORE_LOST * PROBE - 0.1, PROBE) == []
    (lost,) = lost_consumers(seen, 103.0 + PROBES_BEFORE_LOST * PROBE, PROBE)
    assert (lost.queue, lost.probes, lost.silent_seconds) == ("q", 3, 12.0)


def test_too_few_probes_is_not_enough_however_long_the_silence() -> None:
    """A broker outage: probes fail, none is confirmed, so a long silence proves nothing."""
    seen = {"q": QueueActivity(last_delivery=0.0, probes_since_delivery=[1.0, 2.0])}
    assert lost_consumers(seen, 10_000.0, PROBE) == []


def test_deliveries_in_flight_are_life_not_silence() -> None:
    """A database outage holds deliveries unacknowledged, so a full prefetch receives nothing new."""
    seen = {"q": QueueActivity(last_delivery=0.0, in_flight=64, probes_since_delivery=[1.0, 2.0, 3.0, 4.0])}
    assert lost_consumers(seen, 10_000.0, PROBE) == []


def test_only_the_silent_queue_is_named() -> None:
    seen = {
        "alive": QueueActivity(last_delivery=110.0),
        "dead": QueueActivity(last_delivery=100.0, probes_since_delivery=[101.0, 104.0, 107.0]),
    }
    assert [c.queue for c in lost_consumers(seen, 111.0, PROBE)] == ["dead"]
