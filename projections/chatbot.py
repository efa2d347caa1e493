"""The chatbot read model: `chatbot_schedules`, `chatbot_tasks`, `chatbot_opt_outs`.

Folds what the samples projection concluded (status changed, content observed), operators' opt-outs,
and what the dispatcher, relay and workers recorded (task issued, deferred, published, retried,
reported). The dispatcher never writes these tables: it appends events, and the schedule moves on
when this projection folds them, so a rebuild gives exactly the live rows and re-issues nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from events.envelope import (
    CHATBOT_DISPATCH_DEFERRED,
    CHATBOT_RESULT_REPORTED,
    CHATBOT_RETRY_ISSUED,
    CHATBOT_TASK_ISSUED,
    CHATBOT_TASK_PUBLISHED,
    CREATOR_MESSAGING_CHANGED,
    SAMPLE_CONTENT_OBSERVED,
    SAMPLE_STATUS_CHANGED,
    RecordedEvent,
)  # fmt: skip
from events.state import ChatbotResult, CreatorMessaging
from events.statuses import Status
from projections import chatbot_rules as rules
from projections import chatbot_store as store
from projections.chatbot_rules import ChatbotPolicy, SampleFacts, Scenario, Schedule, ScheduleState
from projections.chatbot_timing import TaskAttempts, on_worker_result
from projections.sample_inputs import as_utc


def _time(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value))


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

    def facts(self, data: dict[str, Any], status: str | None) -> SampleFacts:
        creator = data.get("platform_creator_id")
        return SampleFacts(
            sample_id=data["sample_id"], region=data["region"], platform_creator_id=creator,
            status=Status(status) if status else None, content_count=data.get("content_count"),
            opted_out=bool(creator) and creator in self.opt_outs and self.opt_outs[creator][0],
        )  # fmt: skip

    def put(self, event: RecordedEvent, schedules: Sequence[Schedule], region: str, creator: str | None) -> None:
        for schedule in schedules:
            self.schedules.setdefault(schedule.sample_id, {})[schedule.scenario] = schedule
            self.where[schedule.sample_id] = (region, creator)
            self.changed_schedules[(schedule.sample_id, schedule.scenario)] = event.position

    def schedule(self, sample_id: str, scenario: str) -> Schedule | None:
        return self.schedules.get(sample_id, {}).get(Scenario(scenario))

    async def write(self, conn: AsyncConnection) -> None:
        await store.upsert_schedules(conn, [
            (self.schedules[sid][scenario], *self.where[sid], position)
            for (sid, scenario), position in self.changed_schedules.items()
        ])  # fmt: skip
        await store.upsert_tasks(conn, [{**self.tasks[t], "messages": json.dumps(self.tasks[t]["messages"])}
                                        for t in sorted(self.changed_tasks)])  # fmt: skip
        await store.upsert_opt_outs(conn, [
            {"platform_creator_id": c, "opted_out": self.opt_outs[c][0], "changed_at": self.opt_outs[c][1]}
            for c in sorted(self.changed_opt_outs)
        ])  # fmt: skip


def on_status_changed(fold: ChatbotFold, event: RecordedEvent) -> None:
    d = event.data
    changes = rules.on_status_changed(
        fold.schedules.get(d["sample_id"], {}), fold.facts(d, d["to_status"]),
        from_status=Status(d["from_status"]) if d.get("from_status") else None, to_status=Status(d["to_status"]),
        regression=d["regression"], first_sighting=d["first_sighting"], at=_time(d["observed_at"]),
        policy=fold.policy,
    )  # fmt: skip
    fold.put(event, changes, d["region"], d.get("platform_creator_id"))


def on_content_observed(fold: ChatbotFold, event: RecordedEvent) -> None:
    d = event.data
    changes = rules.on_content_observed(fold.schedules.get(d["sample_id"], {}), fold.facts(d, d.get("status")),
                                        at=_time(d["observed_at"]), policy=fold.policy)  # fmt: skip
    fold.put(event, changes, d["region"], d.get("platform_creator_id"))


def on_messaging_changed(fold: ChatbotFold, event: RecordedEvent) -> None:
    change = CreatorMessaging.model_validate(event.data)
    at = as_utc(change.at)
    known = fold.opt_outs.get(change.platform_creator_id)
    if known is not None and known[1] > at:
        return  # an older change arriving late does not undo a newer one
    fold.opt_outs[change.platform_creator_id] = (change.opted_out, at)
    fold.changed_opt_outs.add(change.platform_creator_id)
    if not change.opted_out:
        return  # opting in again re-enables future messages; cancelled ones stay cancelled
    for sample_id, (region, creator) in list(fold.where.items()):
        if creator == change.platform_creator_id:
            fold.put(event, rules.on_opted_out(fold.schedules.get(sample_id, {}), at=at), region, creator)


def on_task_issued(fold: ChatbotFold, event: RecordedEvent) -> None:
    d = event.data
    issued_at = _time(d["issued_at"])
    fold.tasks[d["task_id"]] = {
        "task_id": d["task_id"], "sample_id": d["sample_id"], "scenario": d["scenario"], "run_no": d["run_no"],
        "platform_creator_id": d["platform_creator_id"], "region": d["region"], "messages": d["messages"],
        "issued_at": issued_at, "published_at": None, "publications": 0, "outcome": None, "outcome_reason": None,
        "outcome_at": None, "retry_at": None, "closed": False,
    }  # fmt: skip
    fold.changed_tasks.add(d["task_id"])
    schedule = fold.schedule(d["sample_id"], d["scenario"])
    if schedule is None or schedule.run_count >= d["run_no"]:
        return
    if schedule.state == ScheduleState.PENDING:
        moved = rules.on_dispatched(schedule, at=issued_at, policy=fold.policy)
    else:  # cancelled in the log before the dispatcher saw it: the run happened all the same
        moved = replace(schedule, run_count=d["run_no"], last_run_at=issued_at)
    fold.put(event, [moved], *fold.where[d["sample_id"]])


def on_dispatch_deferred(fold: ChatbotFold, event: RecordedEvent) -> None:
    d = event.data
    schedule = fold.schedule(d["sample_id"], d["scenario"])
    if schedule is not None and schedule.state == ScheduleState.PENDING and schedule.run_count + 1 == d["run_no"]:
        fold.put(event, [replace(schedule, due_at=_time(d["until"]))], *fold.where[d["sample_id"]])


def on_task_published(fold: ChatbotFold, event: RecordedEvent) -> None:
    task = fold.tasks.get(event.data["task_id"])
    if task is not None:
        task["published_at"] = task["published_at"] or _time(event.data["at"])
        task["publications"] = max(task["publications"], event.data["publication"])
        fold.changed_tasks.add(task["task_id"])


def on_retry_issued(fold: ChatbotFold, event: RecordedEvent) -> None:
    task = fold.tasks.get(event.data["task_id"])
    if task is not None:
        task["retry_at"] = None
        fold.changed_tasks.add(task["task_id"])


def on_result_reported(fold: ChatbotFold, event: RecordedEvent) -> None:
    result = ChatbotResult.model_validate(event.data)
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
    schedule = fold.schedule(task["sample_id"], task["scenario"])
    if attempts.closed and schedule is not None and schedule.run_count == task["run_no"]:
        closed = rules.on_task_closed(schedule)
        if closed != schedule:
            fold.put(event, [closed], *fold.where[task["sample_id"]])


HANDLERS = {
    SAMPLE_STATUS_CHANGED: on_status_changed,
    SAMPLE_CONTENT_OBSERVED: on_content_observed,
    CREATOR_MESSAGING_CHANGED: on_messaging_changed,
    CHATBOT_TASK_ISSUED: on_task_issued,
    CHATBOT_DISPATCH_DEFERRED: on_dispatch_deferred,
    CHATBOT_TASK_PUBLISHED: on_task_published,
    CHATBOT_RETRY_ISSUED: on_retry_issued,
    CHATBOT_RESULT_REPORTED: on_result_reported,
}


class ChatbotProjection:
    name = "chatbot"
    event_types = tuple(HANDLERS)
    tables = ("projections.chatbot_schedules", "projections.chatbot_tasks", "projections.chatbot_opt_outs")

    def __init__(self, policy: ChatbotPolicy) -> None:
        self.policy = policy

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
        fold = await self._load(conn, events)
        for event in events:
            HANDLERS[event.event_type](fold, event)
        await fold.write(conn)

    async def _load(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> ChatbotFold:
        sample_ids = {e.data["sample_id"] for e in events if "sample_id" in e.data}
        creators = {e.data.get("platform_creator_id") or e.data.get("platformCreatorId") for e in events}
        creator_ids = {c for c in creators if c}
        task_ids = {e.data.get("task_id") or e.data.get("taskId") for e in events}
        fold = ChatbotFold(self.policy, opt_outs=await store.load_opt_outs(conn, creator_ids))
        fold.tasks = await store.load_tasks(conn, {t for t in task_ids if t})
        sample_ids |= {task["sample_id"] for task in fold.tasks.values()}  # results name only the task
        messaging = {e.data.get("platformCreatorId") or e.data.get("platform_creator_id")
                     for e in events if e.event_type == CREATOR_MESSAGING_CHANGED}  # fmt: skip
        for schedule, region, creator in await store.load_schedules(conn, sample_ids, {c for c in messaging if c}):
            fold.schedules.setdefault(schedule.sample_id, {})[schedule.scenario] = schedule
            fold.where[schedule.sample_id] = (region, creator)
        return fold
