"""Chatbot scheduling decisions (docs/domain.md "Chatbot"), driven by a fixed fake clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.chatbot_events import Scenario
from events.statuses import Status
from projections.chatbot_rules import (
    ChatbotPolicy,
    SampleFacts,
    Schedule,
    ScheduleState,
    issued_without_schedule,
    on_content_observed,
    on_dispatched,
    on_history_revised,
    on_opted_out,
    on_status_changed,
    on_task_closed,
    skip_reason,
)

T0 = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
POLICY = ChatbotPolicy(regions=frozenset({"MX"}))
SID = "sample-1"
Schedules = dict[Scenario, Schedule]


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def facts(status: Status | None, content_count: int | None = None, **overrides: Any) -> SampleFacts:
    base = SampleFacts(sample_id=SID, region="MX", platform_creator_id="c1", status=status, content_count=content_count)
    return replace(base, **overrides)


def move(
    schedules: Schedules,
    from_status: Status | None,
    to_status: Status,
    at: datetime,
    *,
    content_count: int | None = None,
    regression: bool = False,
    first_sighting: bool = False,
    who: dict[str, Any] | None = None,
) -> Schedules:
    """Apply a status change and return the schedules as they would be stored afterwards."""
    changed = on_status_changed(
        schedules,
        facts(to_status, content_count, **(who or {})),
        from_status=from_status,
        to_status=to_status,
        regression=regression,
        first_sighting=first_sighting,
        at=at,
        policy=POLICY,
    )
    return {**schedules, **{s.scenario: s for s in changed}}


def content(schedules: Schedules, count: int | None, at: datetime) -> Schedules:
    changed = on_content_observed(schedules, facts(Status.COMPLETED, count), at=at, policy=POLICY)
    return {**schedules, **{s.scenario: s for s in changed}}


def dispatch(schedules: Schedules, scenario: Scenario, at: datetime) -> Schedules:
    return {**schedules, scenario: on_dispatched(schedules[scenario], at=at, policy=POLICY)}


def completed_empty(at: datetime = T0) -> Schedules:
    return move({}, Status.CONTENT_PENDING, Status.COMPLETED, at, content_count=0)


def test_first_sighting_in_shipped_gets_nothing() -> None:
    assert move({}, None, Status.SHIPPED, T0, first_sighting=True) == {}


def test_first_sighting_in_content_pending_gets_nothing() -> None:
    assert move({}, None, Status.CONTENT_PENDING, T0, first_sighting=True) == {}


def test_entering_shipped_schedules_one_pending_message_due_now() -> None:
    schedules = move({}, Status.TO_REVIEW, Status.SHIPPED, T0)
    assert schedules == {Scenario.SHIPPED: Schedule(SID, Scenario.SHIPPED, ScheduleState.PENDING, due_at=T0)}


def test_entering_content_pending_schedules_once() -> None:
    schedules = move({}, Status.SHIPPED, Status.CONTENT_PENDING, T0)
    assert schedules[Scenario.CONTENT_PENDING].state == ScheduleState.PENDING
    assert schedules[Scenario.CONTENT_PENDING].max_runs == 1


def test_second_entry_into_shipped_does_not_schedule_again() -> None:
    schedules = dispatch(move({}, Status.TO_REVIEW, Status.SHIPPED, T0), Scenario.SHIPPED, T0)
    schedules = move(schedules, Status.SHIPPED, Status.CANCELED, days(1))
    changed = on_status_changed(
        schedules,
        facts(Status.SHIPPED),
        from_status=Status.CANCELED,
        to_status=Status.SHIPPED,
        regression=False,
        first_sighting=False,
        at=days(2),
        policy=POLICY,
    )
    assert changed == []


def test_leaving_shipped_before_dispatch_cancels() -> None:
    schedules = move({}, Status.READY_TO_SHIP, Status.SHIPPED, T0)
    schedules = move(schedules, Status.SHIPPED, Status.CONTENT_PENDING, days(1))
    shipped = schedules[Scenario.SHIPPED]
    assert (shipped.state, shipped.reason) == (ScheduleState.CANCELLED, "sample_left_status")
    assert schedules[Scenario.CONTENT_PENDING].state == ScheduleState.PENDING


def test_leaving_after_dispatch_leaves_the_schedule_alone() -> None:
    schedules = dispatch(move({}, Status.READY_TO_SHIP, Status.SHIPPED, T0), Scenario.SHIPPED, T0)
    schedules = move(schedules, Status.SHIPPED, Status.CONTENT_PENDING, days(1))
    assert schedules[Scenario.SHIPPED].state == ScheduleState.DISPATCHED


def test_completed_without_content_reminds_at_0_5_10_15_days_and_no_fifth() -> None:
    schedules = completed_empty()
    sent_at = []
    for _ in range(10):
        reminder = schedules[Scenario.NO_CONTENT]
        if reminder.state != ScheduleState.PENDING or reminder.due_at is None:
            break
        sent_at.append(reminder.due_at)
        schedules = dispatch(schedules, Scenario.NO_CONTENT, reminder.due_at)
    assert sent_at == [days(0), days(5), days(10), days(15)]
    final = schedules[Scenario.NO_CONTENT]
    assert (final.state, final.run_count, final.due_at) == (ScheduleState.DISPATCHED, 4, None)
    assert on_task_closed(final).state == ScheduleState.DONE


def test_completed_with_unknown_content_schedules_nothing() -> None:
    assert move({}, Status.CONTENT_PENDING, Status.COMPLETED, T0, content_count=None) == {}


def test_first_sighting_in_completed_with_empty_content_is_reminded() -> None:
    schedules = move({}, None, Status.COMPLETED, T0, content_count=0, first_sighting=True)
    assert schedules[Scenario.NO_CONTENT].due_at == T0


def test_content_appearing_cancels_the_next_reminder() -> None:
    schedules = dispatch(completed_empty(), Scenario.NO_CONTENT, T0)
    schedules = content(schedules, 2, days(2))
    reminder = schedules[Scenario.NO_CONTENT]
    assert (reminder.state, reminder.reason) == (ScheduleState.CANCELLED, "content_observed")


def test_content_vanishing_rearms_no_sooner_than_5_days_after_last_reminder() -> None:
    schedules = dispatch(completed_empty(), Scenario.NO_CONTENT, T0)
    schedules = content(content(schedules, 1, days(1)), 0, days(2))
    reminder = schedules[Scenario.NO_CONTENT]
    assert (reminder.state, reminder.due_at, reminder.reason) == (ScheduleState.PENDING, days(5), None)


def test_content_vanishing_long_after_last_reminder_rearms_at_once() -> None:
    schedules = dispatch(completed_empty(), Scenario.NO_CONTENT, T0)
    schedules = content(content(schedules, 1, days(1)), 0, days(9))
    assert schedules[Scenario.NO_CONTENT].due_at == days(9)


def test_cancelled_before_any_reminder_rearms_at_once() -> None:
    schedules = content(content(completed_empty(), 1, T0), 0, days(1))
    assert schedules[Scenario.NO_CONTENT].due_at == days(1)


def test_lifetime_cap_holds_across_flaps() -> None:
    schedules = completed_empty()
    sent = 0
    clock = T0
    for _ in range(8):
        reminder = schedules[Scenario.NO_CONTENT]
        if reminder.state == ScheduleState.PENDING and reminder.due_at is not None:
            clock = max(clock, reminder.due_at)
            schedules = dispatch(schedules, Scenario.NO_CONTENT, clock)
            sent += 1
        clock += timedelta(days=1)
        schedules = content(schedules, 1, clock)
        clock += timedelta(days=1)
        schedules = content(schedules, 0, clock)
    assert sent == 4
    assert schedules[Scenario.NO_CONTENT].run_count == 4
    assert schedules[Scenario.NO_CONTENT].state != ScheduleState.PENDING


def test_leaving_completed_cancels_the_reminder() -> None:
    schedules = move(completed_empty(), Status.COMPLETED, Status.CANCELED, days(1))
    reminder = schedules[Scenario.NO_CONTENT]
    assert (reminder.state, reminder.reason) == (ScheduleState.CANCELLED, "sample_left_status")


@pytest.mark.parametrize(
    ("from_status", "to_status", "content_count"),
    [
        (Status.COMPLETED, Status.SHIPPED, None),
        (Status.COMPLETED, Status.CONTENT_PENDING, None),
        (Status.CANCELED, Status.COMPLETED, 0),
    ],
)
def test_regression_never_schedules(from_status: Status, to_status: Status, content_count: int | None) -> None:
    schedules = move({}, from_status, to_status, T0, content_count=content_count, regression=True)
    assert schedules == {}


def test_regression_still_cancels_what_the_sample_left() -> None:
    schedules = move(completed_empty(), Status.COMPLETED, Status.SHIPPED, days(1), regression=True)
    assert schedules[Scenario.NO_CONTENT].state == ScheduleState.CANCELLED
    assert Scenario.SHIPPED not in schedules


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"region": "US"}, "region_not_supported"),
        ({"platform_creator_id": None}, "no_creator_id"),
        ({"opted_out": True}, "creator_opted_out"),
    ],
)
def test_unmessageable_sample_is_skipped_once(overrides: dict[str, Any], reason: str) -> None:
    schedules = move({}, Status.READY_TO_SHIP, Status.SHIPPED, T0, who=overrides)
    skipped = schedules[Scenario.SHIPPED]
    assert (skipped.state, skipped.reason, skipped.due_at) == (ScheduleState.SKIPPED, reason, None)
    # A later change back into the same status finds the record and creates nothing new.
    later = move(schedules, Status.SHIPPED, Status.CANCELED, days(1), who=overrides)
    assert move(later, Status.CANCELED, Status.SHIPPED, days(2), who=overrides) == later


def test_unmessageable_no_content_is_skipped_once() -> None:
    schedules = move({}, Status.CONTENT_PENDING, Status.COMPLETED, T0, content_count=0, who={"region": "BR"})
    assert schedules[Scenario.NO_CONTENT].reason == "region_not_supported"
    changed = on_content_observed(schedules, facts(Status.COMPLETED, 0, region="BR"), at=days(6), policy=POLICY)
    assert changed == []


def test_skip_reason_checks_region_case_insensitively() -> None:
    assert skip_reason(facts(Status.SHIPPED, region="mx"), POLICY) is None


def test_opt_out_cancels_every_pending_schedule() -> None:
    schedules = {
        Scenario.SHIPPED: Schedule(SID, Scenario.SHIPPED, ScheduleState.DISPATCHED, None, run_count=1),
        Scenario.CONTENT_PENDING: Schedule(SID, Scenario.CONTENT_PENDING, ScheduleState.PENDING, T0),
        Scenario.NO_CONTENT: Schedule(SID, Scenario.NO_CONTENT, ScheduleState.PENDING, days(5), 1, 4),
    }
    changed = on_opted_out(schedules, at=days(1))
    assert [(s.scenario, s.state, s.reason) for s in changed] == [
        (Scenario.CONTENT_PENDING, ScheduleState.CANCELLED, "creator_opted_out"),
        (Scenario.NO_CONTENT, ScheduleState.CANCELLED, "creator_opted_out"),
    ]
    assert on_opted_out({Scenario.SHIPPED: schedules[Scenario.SHIPPED]}, at=days(1)) == []


def test_opted_out_creator_is_not_rearmed_when_content_vanishes() -> None:
    schedules = content(dispatch(completed_empty(), Scenario.NO_CONTENT, T0), 1, days(1))
    changed = on_content_observed(schedules, facts(Status.COMPLETED, 0, opted_out=True), at=days(8), policy=POLICY)
    assert changed == []


def test_task_closed_only_finishes_a_dispatched_schedule() -> None:
    pending = Schedule(SID, Scenario.NO_CONTENT, ScheduleState.PENDING, days(5), run_count=1, max_runs=4)
    assert on_task_closed(pending) is pending


def test_dispatching_a_schedule_that_is_not_pending_changes_nothing() -> None:
    done = Schedule(SID, Scenario.SHIPPED, ScheduleState.DONE, None, run_count=1)
    assert on_dispatched(done, at=T0, policy=POLICY) is done


# --- A late observation revised the history: reconcile what exists with what the history calls for ---


def pending(scenario: Scenario, due: datetime, **overrides: Any) -> Schedule:
    max_runs = POLICY.max_reminders if scenario == Scenario.NO_CONTENT else 1
    return replace(Schedule(SID, scenario, ScheduleState.PENDING, due_at=due, max_runs=max_runs), **overrides)


def test_a_revision_gives_a_schedule_nothing_was_issued_for_what_the_history_calls_for() -> None:
    revised = {Scenario.SHIPPED: pending(Scenario.SHIPPED, days(1))}
    assert on_history_revised({}, revised, policy=POLICY) == ([revised[Scenario.SHIPPED]], [])
    existing = {Scenario.SHIPPED: pending(Scenario.SHIPPED, days(3))}
    assert on_history_revised(existing, revised, policy=POLICY) == ([revised[Scenario.SHIPPED]], [])
    assert on_history_revised(revised, revised, policy=POLICY) == ([], [])


def test_a_revision_removes_a_schedule_the_history_no_longer_calls_for_when_nothing_was_issued() -> None:
    existing = {Scenario.SHIPPED: pending(Scenario.SHIPPED, days(1))}
    assert on_history_revised(existing, {}, policy=POLICY) == ([], [Scenario.SHIPPED])


def test_a_revision_never_takes_back_an_issued_run() -> None:
    dispatched = on_dispatched(pending(Scenario.SHIPPED, days(1)), at=days(1), policy=POLICY)
    assert dispatched.state == ScheduleState.DISPATCHED
    assert on_history_revised({Scenario.SHIPPED: dispatched}, {}, policy=POLICY) == ([], [])


def test_a_revision_cancels_the_reminders_still_ahead_when_the_history_no_longer_wants_them() -> None:
    reminding = on_dispatched(pending(Scenario.NO_CONTENT, days(1)), at=days(1), policy=POLICY)
    assert (reminding.state, reminding.run_count) == (ScheduleState.PENDING, 1)
    (changed,), removed = on_history_revised({Scenario.NO_CONTENT: reminding}, {}, policy=POLICY)
    assert (changed.state, changed.reason, changed.run_count, removed) == (
        ScheduleState.CANCELLED, "sample_left_status", 1, [])  # fmt: skip


def test_a_revision_rearms_cancelled_reminders_no_sooner_than_the_interval_after_the_last() -> None:
    reminded = on_dispatched(pending(Scenario.NO_CONTENT, days(1)), at=days(1), policy=POLICY)
    cancelled = replace(reminded, state=ScheduleState.CANCELLED, due_at=None, reason="content_observed")
    revised = {Scenario.NO_CONTENT: pending(Scenario.NO_CONTENT, days(2))}
    (changed,), _ = on_history_revised({Scenario.NO_CONTENT: cancelled}, revised, policy=POLICY)
    assert (changed.state, changed.due_at, changed.run_count, changed.reason) == (
        ScheduleState.PENDING, days(1) + POLICY.reminder_interval, 1, None)  # fmt: skip


def test_a_revision_leaves_a_skip_and_an_opt_out_cancellation_as_they_are() -> None:
    skipped = Schedule(SID, Scenario.SHIPPED, ScheduleState.SKIPPED, due_at=None, reason="no_creator_id")
    opted_out = replace(pending(Scenario.CONTENT_PENDING, days(1)), state=ScheduleState.CANCELLED, due_at=None,
                        reason="creator_opted_out")  # fmt: skip
    revised = {Scenario.SHIPPED: pending(Scenario.SHIPPED, days(1)),
               Scenario.CONTENT_PENDING: pending(Scenario.CONTENT_PENDING, days(2))}  # fmt: skip
    existing = {Scenario.SHIPPED: skipped, Scenario.CONTENT_PENDING: opted_out}
    assert on_history_revised(existing, revised, policy=POLICY) == ([], [])
    assert on_history_revised(existing, {}, policy=POLICY) == ([], [])


def test_a_run_issued_for_a_schedule_a_revision_removed_is_on_record() -> None:
    one_shot = issued_without_schedule(SID, Scenario.SHIPPED, 1, days(1), POLICY)
    assert (one_shot.state, one_shot.run_count, one_shot.last_run_at) == (ScheduleState.DISPATCHED, 1, days(1))
    assert on_task_closed(one_shot).state == ScheduleState.DONE
    reminder = issued_without_schedule(SID, Scenario.NO_CONTENT, 2, days(1), POLICY)
    assert (reminder.state, reminder.run_count, reminder.max_runs) == (ScheduleState.CANCELLED, 2, POLICY.max_reminders)
    # Armed again later, it keeps its distance from the run that went out.
    (armed,) = on_content_observed(
        {Scenario.NO_CONTENT: reminder}, facts(Status.COMPLETED, 0), at=days(2), policy=POLICY
    )
    assert (armed.state, armed.due_at) == (ScheduleState.PENDING, days(1) + POLICY.reminder_interval)
