"""Folding a page of events into the samples read model, in memory (docs/domain.md: ordering, stale
observations, regressions, content, type-56 webhooks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from events.identity import sample_id
from events.recorded import RecordedEvent
from events.sample_events import CrawlBatchRecorded
from events.statuses import Status
from projections.sample_fold import SampleFold
from projections.samples import fold_events, read_events
from tests.support import example
from tests.unit.events_in_memory import crawl, crawl_row, inbound, recorded, type_56

VALE_ID = "7491112223334445556"
BETO_ID = "7492223334445556667"
PRODUCT = "1729700000000000011"
VALE = sample_id("MX", PRODUCT, VALE_ID)
BETO = sample_id("MX", PRODUCT, BETO_ID)
MAY_2 = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)


def folded(*events: RecordedEvent) -> SampleFold:
    fold = SampleFold(states={})
    fold_events(fold, read_events(events))
    return fold


def status_changes(fold: SampleFold) -> list[dict[str, Any]]:
    return [e.data for e in fold.derived if e.event_type == "sample.status_changed"]


def moves(fold: SampleFold) -> list[tuple[int, str, int, Status | None, Status]]:
    """The history rows the page writes, each sample's in time order."""
    rows = [row for rows in fold.history.values() for row in rows]
    return [(h["event_position"], h["sample_id"], h["seq"], h["from_status"], h["to_status"]) for h in rows]


def derived_ids(events: Sequence[RecordedEvent]) -> list[str]:
    return [str(e.event_id) for e in folded(*events).derived]


def test_derived_events_carry_on_the_trace_context_of_their_cause_and_invent_none() -> None:
    cause = crawl(1, crawl_row("To review", "2026-05-01 10:00:00"), expanded=True)
    context = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "ledger=1"}
    traced = replace(cause, metadata={**cause.metadata, **context})
    derived = folded(traced).derived
    assert derived
    assert all(event.metadata["traceparent"] == context["traceparent"] for event in derived)
    assert all(event.metadata["tracestate"] == "ledger=1" for event in derived)
    untraced = folded(cause).derived
    assert not [event for event in untraced if {"traceparent", "tracestate"} & set(event.metadata)]


def test_a_new_sample_from_a_crawl_batch_is_a_first_sighting() -> None:
    fold = folded(crawl(1, crawl_row("To review", "2026-05-01 10:00:00", productName="Crema 50ml")))
    state = fold.states[VALE]
    assert (state.status, state.platform_creator_id, state.product_name) == (Status.TO_REVIEW, VALE_ID, "Crema 50ml")
    assert state.status_observed_at == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert moves(fold) == [(1, VALE, 0, None, Status.TO_REVIEW)]
    (change,) = fold.derived
    assert (change.event_type, change.stream_id) == ("sample.status_changed", f"sample-{VALE}")
    assert change.data["first_sighting"] is True
    assert (change.data["from_status"], change.data["to_status"]) == (None, "to_review")
    assert change.metadata["correlation_id"] == "corr-1"
    (batch,) = fold.batches
    assert (batch["event_position"], batch["rows_total"], batch["rows_rejected"]) == (1, 1, 0)
    assert (batch["samples_new"], batch["samples_changed"]) == (1, 0)


def test_a_later_status_moves_the_sample_on() -> None:
    fold = folded(
        crawl(1, crawl_row("To review", "2026-05-01 10:00:00")), crawl(2, crawl_row("Shipped", "2026-05-02 10:00:00"))
    )
    assert fold.states[VALE].status == Status.SHIPPED
    assert fold.states[VALE].status_changed_at == MAY_2
    assert moves(fold) == [(1, VALE, 0, None, Status.TO_REVIEW), (2, VALE, 0, Status.TO_REVIEW, Status.SHIPPED)]
    later = status_changes(fold)[1]
    assert (later["first_sighting"], later["regression"], later["to_status"]) == (False, False, "shipped")
    assert [(b["samples_new"], b["samples_changed"]) for b in fold.batches] == [(1, 0), (0, 1)]


def test_an_older_observation_arriving_later_is_folded_where_it_belongs_in_time() -> None:
    fold = folded(
        crawl(1, crawl_row("Shipped", "2026-05-02 10:00:00")), crawl(2, crawl_row("To review", "2026-05-01 10:00:00"))
    )
    assert fold.states[VALE].status == Status.SHIPPED
    assert fold.states[VALE].status_observed_at == MAY_2
    assert moves(fold) == [(2, VALE, 0, None, Status.TO_REVIEW), (1, VALE, 0, Status.TO_REVIEW, Status.SHIPPED)]
    assert fold.rewritten == {VALE}
    assert len(status_changes(fold)) == 1  # the first sighting in shipped, derived before the late one came
    revised = [e.data for e in fold.derived if e.event_type == "sample.history_revised"]
    assert [(s["from_status"], s["to_status"]) for s in revised[0]["steps"]] == [
        (None, "to_review"), ("to_review", "shipped")]  # fmt: skip


def test_a_newer_observation_moving_backwards_is_applied_and_flagged_as_a_regression() -> None:
    fold = folded(
        crawl(1, crawl_row("Shipped", "2026-05-01 10:00:00")), crawl(2, crawl_row("To review", "2026-05-02 10:00:00"))
    )
    assert fold.states[VALE].status == Status.TO_REVIEW
    assert [h["regression"] for h in fold.history[VALE]] == [False, True]
    assert [c["regression"] for c in status_changes(fold)] == [False, True]


def test_two_status_changes_within_one_event_are_numbered_0_and_1() -> None:
    fold = folded(crawl(7, crawl_row("Shipped", "2026-05-01 10:00:00"), crawl_row("Completed", "2026-05-01 10:00:00",
                                                                                  creator=BETO_ID)))  # fmt: skip
    assert moves(fold) == [(7, VALE, 0, None, Status.SHIPPED), (7, BETO, 1, None, Status.COMPLETED)]
    assert len({e.event_id for e in fold.derived}) == 2


def test_derived_event_ids_are_deterministic_and_distinct() -> None:
    events = [
        crawl(1, crawl_row("To review", "2026-05-01 10:00:00"),
              crawl_row("Shipped", "2026-05-01 10:00:00", creator=BETO_ID)),
        crawl(2, crawl_row("Shipped", "2026-05-02 10:00:00"), expanded=True),
    ]  # fmt: skip
    first, again = derived_ids(events), derived_ids(events)
    assert first == again  # a rebuild derives the very same events: appending them again is a no-op
    assert len(first) == len(set(first)) == 3  # 3 status changes, the last one with a content change
    derived = folded(*events).derived
    assert [e.event_type for e in derived] == ["sample.status_changed"] * 3
    assert [e.data["content_changed"] for e in derived] == [False, False, True]


def test_content_counts_only_when_the_drawer_was_expanded() -> None:
    fold = folded(crawl(1, crawl_row("Completed", "2026-05-01 10:00:00"), expanded=False))
    assert fold.states[VALE].content_count is None  # not looked at is not "no content"
    assert [(e.event_type, e.data["content_changed"]) for e in fold.derived] == [("sample.status_changed", False)]
    fold = folded(crawl(1, crawl_row("Completed", "2026-05-01 10:00:00"), expanded=True))
    assert fold.states[VALE].content_count == 0
    (seen,) = [e.data for e in fold.derived]  # one event: the status change carries the content change
    assert (seen["sample_id"], seen["content_count"], seen["to_status"], seen["content_changed"]) == (
        VALE, 0, "completed", True)  # fmt: skip
    assert fold.batches[0]["content_expanded"] is True
    fold = folded(crawl(1, crawl_row("Completed", "2026-05-01 10:00:00"), expanded=False),
                  crawl(2, crawl_row("Completed", "2026-05-02 10:00:00"), expanded=True))  # fmt: skip
    assert [e.event_type for e in fold.derived] == ["sample.status_changed", "sample.content_observed"]
    assert (fold.derived[1].data["content_count"], fold.derived[1].data["status"]) == (0, "completed")


def test_content_items_seen_without_the_drawer_still_count() -> None:
    video = {
        "type": "video",
        "promotionName": "Mi rutina",
        "promotionTime": "2026-04-30 18:00",
        "promotionView": "1.2K",
    }
    fold = folded(crawl(1, crawl_row("Completed", "2026-05-01 10:00:00", **video), expanded=False))
    assert fold.states[VALE].content_count == 1
    ((key, row),) = fold.contents.items()
    assert key[0] == VALE
    assert (row["content_type"], row["title"], row["view_count"]) == ("video", "Mi rutina", 1200)


def test_an_expanded_page_counts_each_samples_posts() -> None:
    fold = folded(recorded(inbound(CrawlBatchRecorded, example("9_1")), 1))
    counts = {s.platform_creator_username: s.content_count for s in fold.states.values()}
    assert counts == {"lupita.makeup": 2, "marisol.vlogs": 0, "hogar.con.dani": 1}
    assert sorted(r["title"] for r in fold.contents.values()) == [
        "LIVE cocina saludable", "Mis brochas favoritas #tiktokshop", "Tutorial rápido de ojos ahumados",
    ]  # fmt: skip
    assert fold.batches[0]["rows_total"] == 4
    assert fold.batches[0]["samples_new"] == 3


def test_a_type_56_webhook_joins_an_existing_sample_by_product_and_creator() -> None:
    fold = folded(crawl(1, crawl_row("Ready to ship", "2026-05-01 10:00:00")), type_56(2, "SHIPPED", MAY_2))
    assert (fold.states[VALE].status, fold.states[VALE].status_source) == (Status.SHIPPED, "webhook")
    assert moves(fold)[-1] == (2, VALE, 0, Status.READY_TO_SHIP, Status.SHIPPED)
    assert (fold.webhooks[2]["disposition"], fold.webhooks[2]["sample_id"]) == ("applied", VALE)
    assert fold.waiting == {}


def test_a_type_56_webhook_joins_by_application_id() -> None:
    fold = folded(
        crawl(1, crawl_row("Ready to ship", "2026-05-01 10:00:00", applicationId="app-9")),
        type_56(2, "REJECT_CANCELLED", MAY_2, creator="someone-else", application="app-9"),
    )
    assert (fold.states[VALE].status, fold.states[VALE].cancel_reason) == (Status.CANCELED, "REJECT_CANCELLED")
    assert fold.webhooks[2]["sample_id"] == VALE


@pytest.mark.parametrize(("webhook_status", "disposition", "moves_after_ready"), [
    ("AWAITING_SHIPMENT", "stale", [(Status.READY_TO_SHIP, Status.COMPLETED)]),  # inside the ready_to_ship run
    ("SHIPPED", "applied", [(Status.READY_TO_SHIP, Status.SHIPPED), (Status.SHIPPED, Status.COMPLETED)]),
])  # fmt: skip
def test_a_late_type_56_webhook_is_applied_where_it_belongs_or_is_stale_when_it_changes_nothing(
    webhook_status: str, disposition: str, moves_after_ready: list[tuple[Status, Status]]
) -> None:
    fold = folded(
        crawl(1, crawl_row("Ready to ship", "2026-05-01 10:00:00")),
        crawl(2, crawl_row("Completed", "2026-05-03 10:00:00")),
        type_56(3, webhook_status, MAY_2),
    )
    assert fold.states[VALE].status == Status.COMPLETED
    assert fold.webhooks[3]["disposition"] == disposition
    assert [m[3:] for m in moves(fold)] == [(None, Status.READY_TO_SHIP), *moves_after_ready]


def test_a_webhook_for_an_unknown_sample_waits_and_is_applied_when_the_sample_appears() -> None:
    fold = SampleFold(states={})
    fold_events(fold, read_events([type_56(1, "SHIPPED", MAY_2)]))
    assert list(fold.waiting) == [1]
    assert (fold.webhooks[1]["disposition"], fold.webhooks[1]["sample_id"]) == ("waiting_for_sample", None)
    assert fold.states == {}

    fold_events(fold, read_events([crawl(2, crawl_row("Ready to ship", "2026-05-01 10:00:00"))]))
    assert fold.waiting == {}
    assert fold.states[VALE].status == Status.SHIPPED
    assert moves(fold) == [(2, VALE, 0, None, Status.READY_TO_SHIP), (2, VALE, 1, Status.READY_TO_SHIP, Status.SHIPPED)]
    assert (fold.webhooks[1]["disposition"], fold.webhooks[1]["sample_id"]) == ("applied", VALE)
    assert [c["source"] for c in status_changes(fold)] == ["portal_tiktok_sample_crawler", "webhook"]


def test_a_waiting_webhook_older_than_the_sighting_that_introduces_the_sample_becomes_its_first_sighting() -> None:
    fold = folded(type_56(1, "SHIPPED", MAY_2), crawl(2, crawl_row("Completed", "2026-05-03 10:00:00")))
    assert fold.states[VALE].status == Status.COMPLETED
    assert fold.webhooks[1]["disposition"] == "applied"
    assert moves(fold) == [(1, VALE, 0, None, Status.SHIPPED), (2, VALE, 0, Status.SHIPPED, Status.COMPLETED)]
    assert fold.waiting == {}


def test_rejected_rows_are_counted_and_do_not_stop_the_batch() -> None:
    fold = folded(crawl(1, crawl_row("Shipped", "2026-05-01 10:00:00"), {"platformProductId": "p"},
                        crawl_row("lost", "2026-05-01 10:00:00", creator=BETO_ID)))  # fmt: skip
    assert list(fold.states) == [VALE]
    assert (fold.batches[0]["rows_total"], fold.batches[0]["rows_rejected"]) == (3, 2)


def test_a_late_observation_that_is_no_moment_of_the_history_rewrites_nothing() -> None:
    fold = folded(
        crawl(1, crawl_row("Ready to ship", "2026-05-01 10:00:00")),
        crawl(2, crawl_row("Shipped", "2026-05-03 10:00:00")),
        crawl(3, crawl_row("Ready to ship", "2026-05-02 10:00:00")),  # inside the ready_to_ship run
    )
    assert fold.rewritten == set()
    assert [e.event_type for e in fold.derived].count("sample.history_revised") == 0
    assert len(moves(fold)) == 2


def test_a_late_sighting_that_wins_a_tie_removes_the_step_it_beats() -> None:
    fold = folded(
        crawl(1, crawl_row("Shipped", "2026-05-01 10:00:00")),
        crawl(2, crawl_row("Ready to ship", "2026-05-02 10:00:00")),  # a regression, for now
        type_56(3, "SHIPPED", MAY_2),  # the same instant: shipped wins the tie
    )
    assert fold.states[VALE].status == Status.SHIPPED
    assert moves(fold) == [(1, VALE, 0, None, Status.SHIPPED)]
    assert fold.rewritten == {VALE}
    assert fold.webhooks[3]["disposition"] == "applied"


def test_content_counts_seen_at_one_instant_leave_one_step_whatever_their_order() -> None:
    def steps(*events: RecordedEvent) -> list[dict[str, Any]]:
        fold = folded(*events)
        revised = [e.data for e in fold.derived if e.event_type == "sample.history_revised"]
        seen = [e.data for e in fold.derived
                if e.event_type == "sample.content_observed" or e.data.get("content_changed")]  # fmt: skip
        return revised[-1]["steps"] if revised else [{"content_count": s["content_count"]} for s in seen]

    empty = crawl(2, crawl_row("Completed", "2026-05-02 10:00:00"), expanded=True)
    posted = crawl(3, crawl_row("Completed", "2026-05-02 10:00:00", type="video", promotionName="Reseña"),
                   expanded=True)  # fmt: skip
    newer = crawl(1, crawl_row("Completed", "2026-05-03 10:00:00", type="video", promotionName="Reseña"),
                  expanded=True)  # fmt: skip
    one_way, other_way = steps(newer, empty, posted), steps(newer, posted, empty)
    assert [s["content_count"] for s in one_way if s.get("content_changed")] == [1]
    assert one_way == other_way
