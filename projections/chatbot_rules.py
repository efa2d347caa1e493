"""Pure scheduling decisions for the chatbot (docs/domain.md "Chatbot"). No I/O; times come in.

One schedule per (sample, scenario). `shipped` and `content_pending` are one-shot and scheduled only
once in a sample's life; `no_content` is a reminder that repeats every `reminder_interval` while a
completed sample has no content, up to `max_reminders` in the sample's life. Every decision not to
send is recorded with a reason, once, so nothing is retried forever.

Each `on_*` function returns only the schedules that are new or changed: an empty list means there
is nothing to write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from events.chatbot_events import Scenario
from events.statuses import Status


class ScheduleState(StrEnum):
    PENDING = "pending"
    DISPATCHED = "dispatched"
    DONE = "done"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


REGION_NOT_SUPPORTED = "region_not_supported"
NO_CREATOR_ID = "no_creator_id"
CREATOR_OPTED_OUT = "creator_opted_out"
SAMPLE_LEFT_STATUS = "sample_left_status"
CONTENT_OBSERVED = "content_observed"

# The one-shot scenarios are named after the status whose entry triggers them.
ONE_SHOT_STATUSES: dict[Status, Scenario] = {
    Status.SHIPPED: Scenario.SHIPPED,
    Status.CONTENT_PENDING: Scenario.CONTENT_PENDING,
}
# The status a sample must stay in for each scenario's pending message to remain wanted.
SCENARIO_STATUS: dict[Scenario, Status] = {
    Scenario.SHIPPED: Status.SHIPPED,
    Scenario.CONTENT_PENDING: Status.CONTENT_PENDING,
    Scenario.NO_CONTENT: Status.COMPLETED,
}


@dataclass(frozen=True)
class ChatbotPolicy:
    regions: frozenset[str]
    reminder_interval: timedelta = timedelta(days=5)
    max_reminders: int = 4


@dataclass(frozen=True)
class Schedule:
    sample_id: str
    scenario: Scenario
    state: ScheduleState
    due_at: datetime | None
    run_count: int = 0
    max_runs: int = 1
    reason: str | None = None
    last_run_at: datetime | None = None


@dataclass(frozen=True)
class SampleFacts:
    """What is known of the sample right after the change being decided on."""

    sample_id: str
    region: str
    platform_creator_id: str | None
    status: Status | None
    content_count: int | None  # None: content never looked at, which is not the same as none posted
    opted_out: bool = False


def skip_reason(facts: SampleFacts, policy: ChatbotPolicy) -> str | None:
    """Why this sample can never be messaged, or None when it can."""
    if facts.region.upper() not in policy.regions:
        return REGION_NOT_SUPPORTED
    if not facts.platform_creator_id:
        return NO_CREATOR_ID
    if facts.opted_out:
        return CREATOR_OPTED_OUT
    return None


def on_status_changed(
    schedules: Mapping[Scenario, Schedule],
    facts: SampleFacts,
    *,
    from_status: Status | None,
    to_status: Status,
    regression: bool,
    first_sighting: bool,
    at: datetime,
    policy: ChatbotPolicy,
) -> list[Schedule]:
    """Cancel what the sample left behind, then schedule what its new status calls for."""
    changed = {s.scenario: s for s in _cancel_left_behind(schedules, from_status, to_status)}
    current = {**schedules, **changed}
    if not regression:
        new = _on_entered(current, facts, to_status=to_status, first_sighting=first_sighting, at=at, policy=policy)
        changed.update({s.scenario: s for s in new})
    return list(changed.values())


def on_content_observed(
    schedules: Mapping[Scenario, Schedule], facts: SampleFacts, *, at: datetime, policy: ChatbotPolicy
) -> list[Schedule]:
    """A look at the content drawer: content cancels the reminder, known-empty content arms it."""
    if facts.content_count is None:
        return []
    if facts.content_count > 0:
        pending = schedules.get(Scenario.NO_CONTENT)
        if pending is not None and pending.state == ScheduleState.PENDING:
            return [_cancel(pending, CONTENT_OBSERVED)]
        return []
    if facts.status == Status.COMPLETED:
        return _arm_no_content(schedules, facts, at=at, policy=policy)
    return []


def on_opted_out(schedules: Mapping[Scenario, Schedule], *, at: datetime) -> list[Schedule]:
    """An operator stopped all messages to the creator: nothing pending may go out.

    `at` is taken like every other decision's time, though the outcome does not depend on it yet."""
    return [_cancel(s, CREATOR_OPTED_OUT) for s in _pending(schedules.values())]


def on_history_revised(
    existing: Mapping[Scenario, Schedule], revised: Mapping[Scenario, Schedule], *, policy: ChatbotPolicy
) -> tuple[list[Schedule], list[Scenario]]:
    """A late observation changed the sample's past: `revised` is what its history, folded again in time
    order, calls for. A schedule no run of which has been issued becomes what the revised history calls
    for, or is removed when it calls for none; a run already issued stands, and only what is still ahead
    of it follows the revised history. A decision that is not the history's also stands: a skip (never
    retried) and a cancellation for an opt-out (an opt-in does not bring it back). Returns the changed
    schedules and the scenarios to remove."""
    changed: list[Schedule] = []
    removed: list[Scenario] = []
    for scenario in sorted(set(existing) | set(revised)):
        old, new = existing.get(scenario), revised.get(scenario)
        if old is not None and _not_the_historys(old):
            continue
        if old is not None and old.run_count > 0:
            kept = _ahead_of_issued_runs(old, new, policy)
            if kept != old:
                changed.append(kept)
        elif new is None:
            if old is not None:
                removed.append(scenario)
        elif new != old:
            changed.append(new)
    return changed, removed


def _not_the_historys(schedule: Schedule) -> bool:
    return schedule.state == ScheduleState.SKIPPED or (
        schedule.state == ScheduleState.CANCELLED and schedule.reason == CREATOR_OPTED_OUT
    )


def issued_without_schedule(sample_id: str, scenario: Scenario, run_no: int, at: datetime,
                            policy: ChatbotPolicy) -> Schedule:  # fmt: skip
    """A run the dispatcher issued for a schedule that a revised history removed before the issue was
    folded: the run happened all the same, so it is on record, and nothing more is wanted until a status
    or content change asks again (a one-shot is then done with; a reminder re-armed keeps its distance)."""
    if scenario == Scenario.NO_CONTENT:
        return Schedule(sample_id, scenario, ScheduleState.CANCELLED, due_at=None, run_count=run_no,
                        max_runs=policy.max_reminders, reason=SAMPLE_LEFT_STATUS, last_run_at=at)  # fmt: skip
    return Schedule(sample_id, scenario, ScheduleState.DISPATCHED, due_at=None, run_count=run_no, max_runs=1,
                    last_run_at=at)  # fmt: skip


def _ahead_of_issued_runs(old: Schedule, new: Schedule | None, policy: ChatbotPolicy) -> Schedule:
    wanted = new is not None and new.state == ScheduleState.PENDING
    if old.state == ScheduleState.PENDING and not wanted:
        return _cancel(old, new.reason if new is not None and new.reason else SAMPLE_LEFT_STATUS)
    if old.state == ScheduleState.CANCELLED and wanted and old.run_count < old.max_runs:
        assert new is not None
        assert new.due_at is not None
        earliest = new.due_at if old.last_run_at is None else old.last_run_at + policy.reminder_interval
        return replace(old, state=ScheduleState.PENDING, due_at=max(new.due_at, earliest), reason=None)
    return old


def on_dispatched(schedule: Schedule, *, at: datetime, policy: ChatbotPolicy) -> Schedule:
    """A run was handed to the workers: count it, and plan the next one while runs remain."""
    if schedule.state != ScheduleState.PENDING:
        return schedule  # only a pending schedule has a run to hand out; a replay changes nothing
    run_count = schedule.run_count + 1
    if run_count < schedule.max_runs:
        due_at = at + policy.reminder_interval
        return replace(schedule, state=ScheduleState.PENDING, due_at=due_at, run_count=run_count, last_run_at=at)
    return replace(schedule, state=ScheduleState.DISPATCHED, due_at=None, run_count=run_count, last_run_at=at)


def on_task_closed(schedule: Schedule) -> Schedule:
    """The last run's task is finished with; a schedule that still has runs ahead stays as it is."""
    if schedule.state == ScheduleState.DISPATCHED:
        return replace(schedule, state=ScheduleState.DONE)
    return schedule


def _cancel_left_behind(
    schedules: Mapping[Scenario, Schedule], from_status: Status | None, to_status: Status
) -> list[Schedule]:
    if from_status is None or from_status == to_status:
        return []
    left = [s for s in _pending(schedules.values()) if SCENARIO_STATUS[s.scenario] == from_status]
    return [_cancel(s, SAMPLE_LEFT_STATUS) for s in left]


def _on_entered(
    schedules: Mapping[Scenario, Schedule],
    facts: SampleFacts,
    *,
    to_status: Status,
    first_sighting: bool,
    at: datetime,
    policy: ChatbotPolicy,
) -> list[Schedule]:
    if to_status == Status.COMPLETED:
        if facts.status == Status.COMPLETED and facts.content_count == 0:
            return _arm_no_content(schedules, facts, at=at, policy=policy)
        return []
    scenario = ONE_SHOT_STATUSES.get(to_status)
    # A first sighting in shipped or content_pending is a collector back-filling history, not news.
    if scenario is None or first_sighting or scenario in schedules:
        return []
    return [_new_schedule(facts, scenario, max_runs=1, at=at, policy=policy)]


def _arm_no_content(
    schedules: Mapping[Scenario, Schedule], facts: SampleFacts, *, at: datetime, policy: ChatbotPolicy
) -> list[Schedule]:
    existing = schedules.get(Scenario.NO_CONTENT)
    if existing is None:
        return [_new_schedule(facts, Scenario.NO_CONTENT, max_runs=policy.max_reminders, at=at, policy=policy)]
    if existing.state != ScheduleState.CANCELLED or existing.run_count >= existing.max_runs:
        return []
    if skip_reason(facts, policy) is not None:
        return []  # stays cancelled: arming it would only queue a message that may not be sent
    # After content flaps the next reminder keeps its distance from the last one.
    earliest = at if existing.last_run_at is None else existing.last_run_at + policy.reminder_interval
    return [replace(existing, state=ScheduleState.PENDING, due_at=max(at, earliest), reason=None)]


def _new_schedule(
    facts: SampleFacts, scenario: Scenario, *, max_runs: int, at: datetime, policy: ChatbotPolicy
) -> Schedule:
    reason = skip_reason(facts, policy)
    if reason is not None:
        return Schedule(facts.sample_id, scenario, ScheduleState.SKIPPED, due_at=None, max_runs=max_runs, reason=reason)
    return Schedule(facts.sample_id, scenario, ScheduleState.PENDING, due_at=at, max_runs=max_runs)


def _cancel(schedule: Schedule, reason: str) -> Schedule:
    return replace(schedule, state=ScheduleState.CANCELLED, due_at=None, reason=reason)


def _pending(schedules: Iterable[Schedule]) -> list[Schedule]:
    return [s for s in schedules if s.state == ScheduleState.PENDING]
