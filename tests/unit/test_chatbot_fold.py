"""Folding the chatbot read model in memory: schedules, tasks and opt-outs from the events that move them
(docs/domain.md "The chatbot rules")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.catalog_events import CreatorMessagingChanged
from events.chatbot_events import (
    ChatbotDispatchDeferred,
    ChatbotResultReported,
    ChatbotTaskIssued,
    ChatbotTaskPublished,
    Scenario,
)
from events.identity import sample_id
from events.recorded import RecordedEvent
from events.sample_events import RevisedStep, SampleContentObserved, SampleHistoryRevised, SampleStatusChanged
from events.statuses import Status, is_regression
from projections.chatbot import ChatbotFold, fold_events
from projections.chatbot_rules import ChatbotPolicy, ScheduleState
from projections.chatbot_tasks import task_id
from tests.unit.events_in_memory import inbound, recorded

VALE_ID, BETO_ID = "7491112223334445556", "7492223334445556667"
VALE = sample_id("MX", "1729700000000000011", VALE_ID)
BETO = sample_id("MX", "1729700000000000011", BETO_ID)
VALE_SHIPPED = task_id(VALE, "shipped", 1)
T0 = datetime(2026, 5, 4, 18, 0, tzinfo=UTC)


def fresh() -> ChatbotFold:
    return ChatbotFold(policy=ChatbotPolicy(regions=frozenset({"MX"})))


def folded(*events: RecordedEvent, fold: ChatbotFold | None = None) -> ChatbotFold:
    fold = fold or fresh()
    fold_events(fold, events)
    return fold


def shipped(position: int, sample: str = VALE, creator: str = VALE_ID, region: str = "MX") -> RecordedEvent:
    return recorded(SampleStatusChanged(
        sample_id=sample, region=region, platform_product_id="1729700000000000011", platform_creator_id=creator,
        from_status=Status.READY_TO_SHIP, to_status=Status.SHIPPED, observed_at=T0, source="crawler",
        regression=False, first_sighting=False, content_count=None,
    ), position)  # fmt: skip


def issued(position: int, at: datetime = T0) -> RecordedEvent:
    return recorded(ChatbotTaskIssued(
        task_id=VALE_SHIPPED, sample_id=VALE, scenario=Scenario.SHIPPED, run_no=1, platform_creator_id=VALE_ID,
        region="MX", messages=[{"type": "text", "content": "¡Tu muestra va en camino!"}], issued_at=at,
    ), position)  # fmt: skip


def published(position: int, publication: int, at: datetime) -> RecordedEvent:
    return recorded(ChatbotTaskPublished(task_id=VALE_SHIPPED, publication=publication, at=at), position)


def result(position: int, outcome: str, at: datetime, retryable: bool = False) -> RecordedEvent:
    body = {"taskId": VALE_SHIPPED, "outcome": outcome, "retryable": retryable, "reason": "r", "at": at.isoformat()}
    return recorded(inbound(ChatbotResultReported, body), position)


def messaging(position: int, creator: str, opted_out: bool, at: datetime) -> RecordedEvent:
    body = {"platformCreatorId": creator, "optedOut": opted_out, "at": at.isoformat()}
    return recorded(inbound(CreatorMessagingChanged, body), position)


def test_entering_shipped_schedules_the_shipped_message_now() -> None:
    fold = folded(shipped(1))
    schedule = fold.schedules[VALE][Scenario.SHIPPED]
    assert (schedule.state, schedule.due_at, schedule.run_count, schedule.max_runs) == (ScheduleState.PENDING, T0, 0, 1)
    assert fold.where[VALE] == ("MX", VALE_ID)
    assert fold.changed_schedules == {(VALE, Scenario.SHIPPED): 1}
    assert (fold.tasks, fold.changed_tasks, fold.opt_outs) == ({}, set(), {})


def test_outside_the_policy_regions_the_message_is_skipped_with_a_reason() -> None:
    schedule = folded(shipped(1, region="FR")).schedules[VALE][Scenario.SHIPPED]
    assert (schedule.state, schedule.reason, schedule.due_at) == (ScheduleState.SKIPPED, "region_not_supported", None)


def test_an_issued_task_dispatches_the_schedule_and_records_the_task() -> None:
    fold = folded(shipped(1), issued(2, at=T0 + timedelta(minutes=1)))
    schedule = fold.schedules[VALE][Scenario.SHIPPED]
    assert (schedule.state, schedule.run_count, schedule.due_at) == (ScheduleState.DISPATCHED, 1, None)
    assert schedule.last_run_at == T0 + timedelta(minutes=1)
    assert fold.changed_schedules == {(VALE, Scenario.SHIPPED): 2}
    assert fold.changed_tasks == {VALE_SHIPPED}
    task = fold.tasks[VALE_SHIPPED]
    assert {k: task[k] for k in ("sample_id", "scenario", "run_no", "platform_creator_id", "region")} == {
        "sample_id": VALE, "scenario": "shipped", "run_no": 1, "platform_creator_id": VALE_ID, "region": "MX",
    }  # fmt: skip
    assert (task["issued_at"], task["published_at"], task["publications"]) == (T0 + timedelta(minutes=1), None, 0)
    assert (task["outcome"], task["closed"], task["retry_at"]) == (None, False, None)
    assert task["messages"] == [{"type": "text", "content": "¡Tu muestra va en camino!"}]


def test_publications_set_the_first_published_time_and_count() -> None:
    first, second = T0 + timedelta(seconds=5), T0 + timedelta(hours=1)
    fold = folded(shipped(1), issued(2), published(3, 1, first))
    assert (fold.tasks[VALE_SHIPPED]["published_at"], fold.tasks[VALE_SHIPPED]["publications"]) == (first, 1)
    folded(published(4, 2, second), published(5, 1, first), fold=fold)  # a repeated confirm counts nothing
    assert (fold.tasks[VALE_SHIPPED]["published_at"], fold.tasks[VALE_SHIPPED]["publications"]) == (first, 2)


def test_a_retryable_failure_plans_a_retry_and_a_sent_result_closes_task_and_schedule() -> None:
    failed_at, sent_at = T0 + timedelta(minutes=2), T0 + timedelta(hours=1, minutes=5)
    fold = folded(shipped(1), issued(2), published(3, 1, T0), result(4, "failed", failed_at, retryable=True))
    task = fold.tasks[VALE_SHIPPED]
    assert (task["outcome"], task["closed"], task["retry_at"]) == ("failed", False, failed_at + timedelta(hours=1))
    assert fold.schedules[VALE][Scenario.SHIPPED].state == ScheduleState.DISPATCHED

    folded(published(5, 2, T0 + timedelta(hours=1)), result(6, "sent", sent_at), fold=fold)
    task = fold.tasks[VALE_SHIPPED]
    assert (task["outcome"], task["closed"], task["retry_at"], task["outcome_at"]) == ("sent", True, None, sent_at)
    assert fold.schedules[VALE][Scenario.SHIPPED].state == ScheduleState.DONE
    assert fold.changed_schedules[(VALE, Scenario.SHIPPED)] == 6


def test_a_failure_that_is_not_retryable_closes_the_task() -> None:
    fold = folded(shipped(1), issued(2), published(3, 1, T0), result(4, "failed", T0 + timedelta(minutes=2)))
    assert (fold.tasks[VALE_SHIPPED]["closed"], fold.tasks[VALE_SHIPPED]["retry_at"]) == (True, None)
    assert fold.schedules[VALE][Scenario.SHIPPED].state == ScheduleState.DONE


def test_an_opt_out_cancels_the_creators_pending_schedules_only() -> None:
    fold = folded(shipped(1), shipped(2, sample=BETO, creator=BETO_ID), messaging(3, VALE_ID, True, T0))
    vale, beto = fold.schedules[VALE][Scenario.SHIPPED], fold.schedules[BETO][Scenario.SHIPPED]
    assert (vale.state, vale.reason, vale.due_at) == (ScheduleState.CANCELLED, "creator_opted_out", None)
    assert beto.state == ScheduleState.PENDING
    assert fold.opt_outs == {VALE_ID: (True, T0)}
    assert fold.changed_opt_outs == {VALE_ID}
    assert fold.changed_schedules[(VALE, Scenario.SHIPPED)] == 3
    assert fold.changed_schedules[(BETO, Scenario.SHIPPED)] == 2


def test_an_older_opt_in_arriving_later_does_not_undo_a_newer_opt_out() -> None:
    fold = folded(messaging(1, VALE_ID, True, T0), messaging(2, VALE_ID, False, T0 - timedelta(days=1)))
    assert fold.opt_outs == {VALE_ID: (True, T0)}
    folded(shipped(3), fold=fold)  # still opted out: the new message is skipped, never pending
    schedule = fold.schedules[VALE][Scenario.SHIPPED]
    assert (schedule.state, schedule.reason) == (ScheduleState.SKIPPED, "creator_opted_out")


def test_a_newer_opt_in_re_enables_future_messages_but_not_cancelled_ones() -> None:
    fold = folded(shipped(1), messaging(2, VALE_ID, True, T0), messaging(3, VALE_ID, False, T0 + timedelta(hours=1)))
    assert fold.opt_outs == {VALE_ID: (False, T0 + timedelta(hours=1))}
    assert fold.schedules[VALE][Scenario.SHIPPED].state == ScheduleState.CANCELLED


def test_a_deferral_moves_the_due_time_of_the_pending_run() -> None:
    until = T0 + timedelta(hours=15)
    deferred = ChatbotDispatchDeferred(sample_id=VALE, scenario=Scenario.SHIPPED, run_no=1, until=until, due_at=T0)
    fold = folded(shipped(1), recorded(deferred, 2))
    schedule = fold.schedules[VALE][Scenario.SHIPPED]
    assert (schedule.state, schedule.due_at, schedule.run_count) == (ScheduleState.PENDING, until, 0)
    assert fold.changed_schedules == {(VALE, Scenario.SHIPPED): 2}


def test_a_deferral_of_another_run_changes_nothing() -> None:
    stale = ChatbotDispatchDeferred(sample_id=VALE, scenario=Scenario.SHIPPED, run_no=2, until=T0 + timedelta(hours=15),
                                    due_at=T0)  # fmt: skip
    fold = folded(shipped(1), recorded(stale, 2))
    assert fold.schedules[VALE][Scenario.SHIPPED].due_at == T0
    assert fold.changed_schedules == {(VALE, Scenario.SHIPPED): 1}


def test_a_result_for_an_unknown_task_changes_nothing() -> None:
    fold = folded(result(1, "sent", T0))
    assert (fold.tasks, fold.changed_tasks, fold.schedules) == ({}, set(), {})


def revised_away(position: int) -> RecordedEvent:
    """A revised history in which shipped is entered as a regression: it calls for no shipped message."""
    steps = (
        RevisedStep(observed_at=T0 - timedelta(days=2), status=Status.READY_TO_SHIP, content_count=None,
                    to_status=Status.READY_TO_SHIP, source="crawler", first_sighting=True),
        RevisedStep(observed_at=T0 - timedelta(days=1), status=Status.COMPLETED, content_count=None,
                    from_status=Status.READY_TO_SHIP, to_status=Status.COMPLETED, source="crawler"),
        RevisedStep(observed_at=T0, status=Status.SHIPPED, content_count=None, from_status=Status.COMPLETED,
                    to_status=Status.SHIPPED, source="crawler", regression=True),
    )  # fmt: skip
    return recorded(SampleHistoryRevised(sample_id=VALE, region="MX", platform_product_id="1729700000000000011",
                                         platform_creator_id=VALE_ID, steps=steps), position)  # fmt: skip


def test_a_revision_removes_a_schedule_nothing_was_issued_for() -> None:
    fold = folded(shipped(1), revised_away(2))
    assert fold.schedule(VALE, Scenario.SHIPPED) is None
    assert fold.removed_schedules == {(VALE, Scenario.SHIPPED)}


def test_a_run_issued_just_before_a_revision_removed_its_schedule_is_still_recorded() -> None:
    fold = folded(shipped(1), revised_away(2), issued(3))
    schedule = fold.schedule(VALE, Scenario.SHIPPED)
    assert schedule is not None
    assert (schedule.state, schedule.run_count, schedule.last_run_at) == (ScheduleState.DISPATCHED, 1, T0)
    assert fold.removed_schedules == set()
    assert VALE_SHIPPED in fold.tasks


def _moved(position: int, before: Status | None, after: Status, count: int | None, *, split: bool,
           at: datetime = T0) -> list[RecordedEvent]:  # fmt: skip
    """A status change that also changed the content count: one event, or (as derived before
    `content_changed` existed) a status change followed by a content observation."""
    change = SampleStatusChanged(
        sample_id=VALE, region="MX", platform_product_id="1729700000000000011", platform_creator_id=VALE_ID,
        from_status=before, to_status=after, observed_at=at, source="crawler",
        regression=before is not None and is_regression(before, after),
        first_sighting=before is None, content_count=count, content_changed=not split,
    )  # fmt: skip
    if not split:
        return [recorded(change, position)]
    seen = SampleContentObserved(sample_id=VALE, region="MX", platform_creator_id=VALE_ID, status=after,
                                 content_count=count, observed_at=at)  # fmt: skip
    return [recorded(change, position), recorded(seen, position + 1)]


@pytest.mark.parametrize(
    "moves",
    [
        [(None, Status.COMPLETED, 0)],  # arms the no-content reminder
        [(None, Status.READY_TO_SHIP, 0), (Status.READY_TO_SHIP, Status.SHIPPED, 1)],
        [(None, Status.COMPLETED, 0), (Status.COMPLETED, Status.CONTENT_PENDING, 2)],  # leaving completed cancels it
        [(None, Status.CONTENT_PENDING, 0), (Status.CONTENT_PENDING, Status.COMPLETED, 0)],
        [
            (None, Status.READY_TO_SHIP, 0),
            (Status.READY_TO_SHIP, Status.SHIPPED, 0),
            (Status.SHIPPED, Status.COMPLETED, 3),
        ],
        # A regression into completed with no content: the status rules schedule nothing on a
        # regression, so only the content rule arms the reminder.
        [(None, Status.CANCELED, None), (Status.CANCELED, Status.COMPLETED, 0)],
    ],
)
def test_a_status_change_carrying_its_content_change_folds_as_the_two_events_did(
    moves: list[tuple[Status | None, Status, int | None]],
) -> None:
    def fold(*, split: bool) -> ChatbotFold:
        events = [
            e
            for n, (before, after, count) in enumerate(moves)
            for e in _moved(10 * (n + 1), before, after, count, split=split, at=T0 + timedelta(days=n))
        ]
        return folded(*events)  # fmt: skip

    one, two = fold(split=False), fold(split=True)
    assert one.schedules == two.schedules
    assert one.schedules  # every case schedules or cancels something
