"""The chatbot read model: `chatbot_schedules`, `chatbot_tasks`, `chatbot_opt_outs`.

Folds what the samples projection concluded (status changed, content observed), operators' opt-outs,
and what the dispatcher, relay and workers recorded (task issued, deferred, published, retried,
reported). The dispatcher never writes these tables: it appends events, and the schedule moves on
when this projection folds them, so a rebuild gives exactly the live rows and re-issues nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from events.catalog_events import CreatorMessagingChanged
from events.chatbot_events import (
    ChatbotDispatchDeferred,
    ChatbotResultReported,
    ChatbotRetryIssued,
    ChatbotTaskIssued,
    ChatbotTaskPublished,
    Scenario,
)
from events.model import DomainEvent
from events.recorded import NewEvent, RecordedEvent
from events.sample_events import SampleContentObserved, SampleHistoryRevised, SampleStatusChanged
from events.statuses import Status
from projections import chatbot_rules as rules
from projections import chatbot_store as store
from projections.chatbot_rules import ChatbotPolicy, SampleFacts, Schedule, ScheduleState
from projections.chatbot_tasks import TaskAttempts, on_worker_result
from projections.opt_outs import supersedes
from projections.sample_inputs import as_utc


@dataclass
class ChatbotFold:
    policy: ChatbotPolicy
    schedules: dict[str, dict[Scenario, Schedule]] = field(default_factory=dict)
    where: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # sample → (region, creator)
    opt_outs: dict[str, tuple[bool, datetime]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed_schedules: dict[tuple[str, Scenario], int] = field(default_factory=dict)
    changed_tasks: set[str] = field(default_factory=set)
    changed_opt_outs: set[str] = field(default_factory=set)
    removed_schedules: set[tuple[str, Scenario]] = field(default_factory=set)

    def facts(self, change: SampleStatusChanged | SampleContentObserved, status: Status | None) -> SampleFacts:
        return self.sample_facts(change.sample_id, change.region, change.platform_creator_id, status,
                                 change.content_count)  # fmt: skip

    def sample_facts(self, sample_id: str, region: str, creator: str | None, status: Status | None,
                     content_count: int | None) -> SampleFacts:  # fmt: skip
        return SampleFacts(
            sample_id=sample_id, region=region, platform_creator_id=creator, status=status,
            content_count=content_count,
            opted_out=bool(creator) and creator in self.opt_outs and self.opt_outs[creator][0],
        )  # fmt: skip

    def put(self, event: RecordedEvent, schedules: Sequence[Schedule], region: str, creator: str | None) -> None:
        for schedule in schedules:
            self.schedules.setdefault(schedule.sample_id, {})[schedule.scenario] = schedule
            self.where[schedule.sample_id] = (region, creator)
            self.changed_schedules[(schedule.sample_id, schedule.scenario)] = event.position
            self.removed_schedules.discard((schedule.sample_id, schedule.scenario))

    def remove(self, sample_id: str, scenarios: Sequence[Scenario]) -> None:
        for scenario in scenarios:
            del self.schedules[sample_id][scenario]
            self.changed_schedules.pop((sample_id, scenario), None)
            self.removed_schedules.add((sample_id, scenario))

    def schedule(self, sample_id: str, scenario: Scenario) -> Schedule | None:
        return self.schedules.get(sample_id, {}).get(scenario)

    async def write(self, conn: AsyncConnection) -> None:
        await store.delete_schedules(conn, sorted(self.removed_schedules))
        await store.upsert_schedules(conn, [
            (self.schedules[sid][scenario], *self.where[sid], position)
            for (sid, scenario), position in self.changed_schedules.items()
        ])  # fmt: skip
        await store.upsert_tasks(conn, [self.tasks[t] for t in sorted(self.changed_tasks)])
        await store.upsert_opt_outs(conn, [
            {"platform_creator_id": c, "opted_out": self.opt_outs[c][0], "changed_at": self.opt_outs[c][1]}
            for c in sorted(self.changed_opt_outs)
        ])  # fmt: skip


def on_status_changed(fold: ChatbotFold, event: RecordedEvent, change: SampleStatusChanged) -> None:
    facts, at = fold.facts(change, change.to_status), as_utc(change.observed_at)
    changes = rules.on_status_changed(
        fold.schedules.get(change.sample_id, {}), facts,
        from_status=change.from_status, to_status=change.to_status, regression=change.regression,
        first_sighting=change.first_sighting, at=at, policy=fold.policy,
    )  # fmt: skip
    fold.put(event, changes, change.region, change.platform_creator_id)
    if change.content_changed:  # what a `sample.content_observed` right after it would have said
        seen = rules.on_content_observed(fold.schedules.get(change.sample_id, {}), facts, at=at, policy=fold.policy)
        fold.put(event, seen, change.region, change.platform_creator_id)


def on_content_observed(fold: ChatbotFold, event: RecordedEvent, seen: SampleContentObserved) -> None:
    changes = rules.on_content_observed(fold.schedules.get(seen.sample_id, {}), fold.facts(seen, seen.status),
                                        at=as_utc(seen.observed_at), policy=fold.policy)  # fmt: skip
    fold.put(event, changes, seen.region, seen.platform_creator_id)


def on_history_revised(fold: ChatbotFold, event: RecordedEvent, revised: SampleHistoryRevised) -> None:
    """Fold the sample's whole revised history from no schedule at all, then reconcile with what exists."""
    sid, region, creator = revised.sample_id, revised.region, revised.platform_creator_id
    replayed: dict[Scenario, Schedule] = {}
    for step in revised.steps:
        facts = fold.sample_facts(sid, region, creator, step.status, step.content_count)
        at = as_utc(step.observed_at)
        if step.to_status is not None:
            replayed.update((s.scenario, s) for s in rules.on_status_changed(
                replayed, facts, from_status=step.from_status, to_status=step.to_status,
                regression=step.regression, first_sighting=step.first_sighting, at=at, policy=fold.policy,
            ))  # fmt: skip
        if step.content_changed:
            replayed.update((s.scenario, s) for s in rules.on_content_observed(replayed, facts, at=at,
                                                                               policy=fold.policy))  # fmt: skip
    changed, removed = rules.on_history_revised(fold.schedules.get(sid, {}), replayed, policy=fold.policy)
    fold.put(event, changed, region, creator)
    fold.remove(sid, removed)


def on_messaging_changed(fold: ChatbotFold, event: RecordedEvent, change: CreatorMessagingChanged) -> None:
    at = as_utc(change.at)
    known = fold.opt_outs.get(change.platform_creator_id)
    if not supersedes(at, known[1] if known else None):
        return
    fold.opt_outs[change.platform_creator_id] = (change.opted_out, at)
    fold.changed_opt_outs.add(change.platform_creator_id)
    if not change.opted_out:
        return  # opting in again re-enables future messages; cancelled ones stay cancelled
    for sample_id, (region, creator) in list(fold.where.items()):
        if creator == change.platform_creator_id:
            fold.put(event, rules.on_opted_out(fold.schedules.get(sample_id, {}), at=at), region, creator)


def on_task_issued(fold: ChatbotFold, event: RecordedEvent, issued: ChatbotTaskIssued) -> None:
    issued_at = as_utc(issued.issued_at)
    fold.tasks[issued.task_id] = {
        "task_id": issued.task_id, "sample_id": issued.sample_id, "scenario": issued.scenario.value,
        "run_no": issued.run_no, "platform_creator_id": issued.platform_creator_id, "region": issued.region,
        "messages": issued.messages, "issued_at": issued_at, "published_at": None, "publications": 0,
        "outcome": None, "outcome_reason": None, "outcome_at": None, "retry_at": None, "closed": False,
    }  # fmt: skip
    fold.changed_tasks.add(issued.task_id)
    schedule = fold.schedule(issued.sample_id, issued.scenario)
    if schedule is None:  # removed by a revised history after the dispatcher issued the run
        recorded = rules.issued_without_schedule(issued.sample_id, issued.scenario, issued.run_no, issued_at,
                                                 fold.policy)  # fmt: skip
        fold.put(event, [recorded], issued.region, issued.platform_creator_id)
        return
    if schedule.run_count >= issued.run_no:
        return
    if schedule.state == ScheduleState.PENDING:
        moved = rules.on_dispatched(schedule, at=issued_at, policy=fold.policy)
    else:  # cancelled in the log before the dispatcher saw it: the run happened all the same
        moved = replace(schedule, run_count=issued.run_no, last_run_at=issued_at)
    fold.put(event, [moved], *fold.where[issued.sample_id])


def on_dispatch_deferred(fold: ChatbotFold, event: RecordedEvent, deferred: ChatbotDispatchDeferred) -> None:
    schedule = fold.schedule(deferred.sample_id, deferred.scenario)
    if (schedule is not None and schedule.state == ScheduleState.PENDING
            and schedule.run_count + 1 == deferred.run_no):  # fmt: skip
        fold.put(event, [replace(schedule, due_at=as_utc(deferred.until))], *fold.where[deferred.sample_id])


def on_task_published(fold: ChatbotFold, event: RecordedEvent, published: ChatbotTaskPublished) -> None:
    task = fold.tasks.get(published.task_id)
    if task is not None:
        task["published_at"] = task["published_at"] or as_utc(published.at)
        task["publications"] = max(task["publications"], published.publication)
        fold.changed_tasks.add(task["task_id"])


def on_retry_issued(fold: ChatbotFold, event: RecordedEvent, retry: ChatbotRetryIssued) -> None:
    task = fold.tasks.get(retry.task_id)
    if task is not None:
        task["retry_at"] = None
        fold.changed_tasks.add(task["task_id"])


def on_result_reported(fold: ChatbotFold, event: RecordedEvent, result: ChatbotResultReported) -> None:
    task = fold.tasks.get(result.task_id)
    if task is None:
        return  # a result for a task this service never issued: recorded in the log, nothing to project
    attempts = on_worker_result(
        TaskAttempts(task["task_id"], max(task["publications"], 1), task["outcome"], task["closed"], task["retry_at"]),
        outcome=result.outcome, retryable=result.retryable, at=as_utc(result.at),
    )  # fmt: skip
    task.update(outcome=attempts.outcome, closed=attempts.closed, retry_at=attempts.retry_at,
                outcome_reason=result.reason, outcome_at=as_utc(result.at))  # fmt: skip
    fold.changed_tasks.add(task["task_id"])
    schedule = fold.schedule(task["sample_id"], Scenario(task["scenario"]))
    if attempts.closed and schedule is not None and schedule.run_count == task["run_no"]:
        closed = rules.on_task_closed(schedule)
        if closed != schedule:
            fold.put(event, [closed], *fold.where[task["sample_id"]])


# One small function per event type; the projection folds exactly these.
HANDLERS: dict[type[DomainEvent], Callable[[ChatbotFold, RecordedEvent, Any], None]] = {
    SampleStatusChanged: on_status_changed,
    SampleContentObserved: on_content_observed,
    SampleHistoryRevised: on_history_revised,
    CreatorMessagingChanged: on_messaging_changed,
    ChatbotTaskIssued: on_task_issued,
    ChatbotDispatchDeferred: on_dispatch_deferred,
    ChatbotTaskPublished: on_task_published,
    ChatbotRetryIssued: on_retry_issued,
    ChatbotResultReported: on_result_reported,
}


def fold_events(fold: ChatbotFold, events: Sequence[RecordedEvent]) -> None:
    """Fold a page in log order (pure: `fold` holds every schedule, task and opt-out it can touch)."""
    for event in events:
        HANDLERS[type(event.event)](fold, event, event.event)


class ChatbotProjection:
    name = "chatbot"
    event_types = tuple(cls.type_name for cls in HANDLERS)
    derives_events = False  # the dispatcher decides and records the tasks
    tables = ("projections.chatbot_schedules", "projections.chatbot_tasks", "projections.chatbot_opt_outs")

    def __init__(self, policy: ChatbotPolicy) -> None:
        self.policy = policy

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        fold = await self._load(conn, events)
        fold_events(fold, events)
        await fold.write(conn)
        return ()

    async def _load(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> ChatbotFold:
        typed = [e.event for e in events]
        sample_ids = {str(e.sample_id) for e in typed if hasattr(e, "sample_id")}
        creator_ids = {str(c) for e in typed if (c := getattr(e, "platform_creator_id", None))}
        task_ids = {str(e.task_id) for e in typed if hasattr(e, "task_id")}
        fold = ChatbotFold(self.policy, opt_outs=await store.load_opt_outs(conn, creator_ids))
        fold.tasks = await store.load_tasks(conn, task_ids)
        sample_ids |= {task["sample_id"] for task in fold.tasks.values()}  # results name only the task
        messaging = {e.platform_creator_id for e in typed if isinstance(e, CreatorMessagingChanged)}
        for schedule, region, creator in await store.load_schedules(conn, sample_ids, messaging):
            fold.schedules.setdefault(schedule.sample_id, {})[schedule.scenario] = schedule
            fold.where[schedule.sample_id] = (region, creator)
        return fold
