"""Which failed publications of a relay pass back off: every refused one, and of those the broker
never took because it was away, only the first (the rest were not refused, only not sent: their lease
is released so that they go on the next pass)."""

from __future__ import annotations

import aio_pika

from service.dispatcher import DispatchReport
from service.relay import RelayReport, _failures_to_record


def test_every_refused_task_backs_off_but_only_the_first_that_met_an_outage() -> None:
    refused = RuntimeError("NO_ROUTE")
    away = ConnectionError("connection reset")
    failures = [("t1", refused), ("t2", away), ("t3", away), ("t4", refused), ("t5", TimeoutError())]
    recorded, not_sent = _failures_to_record(failures)
    assert [row for row, _ in recorded] == ["t1", "t4", "t2"]
    assert not_sent == ["t3", "t5"]


def test_a_closed_channel_counts_as_the_broker_being_away() -> None:
    closed = aio_pika.exceptions.ChannelInvalidStateError("closed")
    recorded, not_sent = _failures_to_record([("t1", closed), ("t2", closed)])
    assert [row for row, _ in recorded] == ["t1"]
    assert not_sent == ["t2"]


def test_a_pass_names_the_event_types_it_appended_so_the_projections_that_fold_them_wake() -> None:
    assert DispatchReport(issued=2, deferred=0, retried=1).appended_types == {
        "chatbot.task_issued",
        "chatbot.task_retry_issued",
    }
    assert DispatchReport(deferred=3).appended_types == {"chatbot.dispatch_deferred"}
    assert DispatchReport().appended_types == frozenset()
    assert RelayReport(published=1, failed=4).appended_types == {"chatbot.task_published"}
    assert RelayReport(failed=4).appended_types == frozenset()
