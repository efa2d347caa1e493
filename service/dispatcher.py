"""The dispatcher: turns due chatbot schedules into tasks, in one transaction each batch.

For every due schedule it decides, with the pure timing rules, whether the task may go out now
(quiet hours in the region's time, the per-creator daily cap) and records the decision as an event:
`chatbot.task_issued` together with its outbox row, or `chatbot.dispatch_deferred`. Event ids come
from the task's business key, so the same run can never be decided twice, whatever crashes, replicas
or replays happen; the schedule itself moves on when the chatbot projection folds the event.
Schedules are claimed `FOR UPDATE SKIP LOCKED`, so any number of replicas may run it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import streams
from events.chatbot_events import ChatbotDispatchDeferred, ChatbotRetryIssued, ChatbotTaskIssued, Scenario
from events.recorded import NewEvent, decision_id, trace_context
from events.sample_events import SampleStatusChanged
from projections.chatbot_messages import MessageContext, build_messages
from projections.chatbot_tasks import next_publication, task_id
from projections.chatbot_timing import after_quiet_hours, cap_window_start, dispatch_time, region_timezone
from service.database import single_statements
from service.eventstore import append_events, begin_appending
from service.settings import Settings
from service.telemetry import Telemetry

log = structlog.get_logger("sample_ledger.dispatcher")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


_DUE_SCHEDULES = """
    projections.chatbot_schedules s
    WHERE s.state = 'pending' AND s.due_at <= :now
      AND NOT EXISTS (SELECT 1 FROM eventstore.chatbot_outbox o      -- issued, not yet folded
                      WHERE o.sample_id = s.sample_id AND o.scenario = s.scenario AND o.run_no = s.run_count + 1)
"""
_DUE_RETRIES = "projections.chatbot_tasks t WHERE NOT t.closed AND t.retry_at <= :now"
_DUE = text(f"""
    SELECT s.sample_id, s.scenario, s.due_at, s.run_count, s.region, s.platform_creator_id, s.updated_position
    FROM {_DUE_SCHEDULES}
    ORDER BY s.due_at
    LIMIT :limit
    FOR UPDATE OF s SKIP LOCKED
""")
# Before a pass opens its transaction: most wake-ups find nothing due, and a pass that finds nothing
# was five round trips (begin, announce, schedules, retries, commit). One statement, no transaction.
# The retries as the earliest retry time, not EXISTS: for an EXISTS PostgreSQL may guess that a few rows
# of a sequential scan find one (it did, on a table never analysed), and then read every task ever
# issued at every wake-up; min() over the partial index reads its first entry, whatever the table's size.
_ANYTHING_DUE = text(f"""
    SELECT EXISTS (SELECT 1 FROM {_DUE_SCHEDULES})
        OR coalesce((SELECT min(t.retry_at) FROM projections.chatbot_tasks t
                     WHERE t.retry_at IS NOT NULL AND NOT t.closed) <= :now, false)
""")
# The creators' first publications in the cap's window, through the (creator, created_at) index. The
# publication compared as an expression: otherwise PostgreSQL, with no statistics for the outbox, ANDs
# in a bitmap of every first publication ever made (the run index) to keep a creator's few.
_RECENT = text("""
    SELECT platform_creator_id, created_at FROM eventstore.chatbot_outbox
    WHERE platform_creator_id = ANY(CAST(:creators AS text[])) AND created_at > :since AND publication + 0 = 1
""")
_CONTEXT = text("""
    SELECT s.sample_id, s.platform_product_id, coalesce(p.product_name, s.product_name) AS product_name,
           coalesce(p.platform_campaign_name, s.platform_campaign_name) AS campaign_name,
           coalesce(c.platform_creator_username, s.platform_creator_username) AS username,
           c.whatsapp IS NOT NULL AS has_whatsapp
    FROM projections.samples s
    LEFT JOIN projections.products p USING (platform_product_id)
    LEFT JOIN projections.creators c ON c.platform_creator_id = s.platform_creator_id
    WHERE s.sample_id = ANY(CAST(:ids AS text[]))
""")
# The trace a task continues: the sample's latest status change, which (directly or through the
# schedule it made due) is why the task goes out; its trace is that of the message that changed it.
# The type compared as an expression: PostgreSQL, unsure how many events a type has, otherwise ANDs in
# a bitmap of every status change ever appended (the type index) to keep the few in these streams.
_STATUS_CHANGE_TRACES = text("""
    SELECT DISTINCT ON (stream_id) stream_id, metadata->>'traceparent' AS traceparent,
           metadata->>'tracestate' AS tracestate
    FROM eventstore.events
    WHERE stream_id = ANY(CAST(:stream_ids AS text[])) AND event_type || '' = :event_type
    ORDER BY stream_id, stream_version DESC
""")
_OUTBOX = text("""
    INSERT INTO eventstore.chatbot_outbox
        (task_id, publication, sample_id, scenario, run_no, platform_creator_id, body, created_at, next_attempt_at,
         traceparent)
    SELECT t.task_id, 1, t.sample_id, t.scenario, t.run_no, t.creator, t.body::jsonb, :now, :now, t.traceparent
    FROM unnest(CAST(:task_ids AS text[]), CAST(:sample_ids AS text[]), CAST(:scenarios AS text[]),
                CAST(:run_nos AS int[]), CAST(:creators AS text[]), CAST(:bodies AS text[]),
                CAST(:traceparents AS text[]))
         AS t(task_id, sample_id, scenario, run_no, creator, body, traceparent)
    ORDER BY t.task_id  -- a stable order between replicas
    ON CONFLICT DO NOTHING
""")
_RETRIES = text(f"""
    SELECT t.task_id, t.region, t.publications
    FROM {_DUE_RETRIES}
    ORDER BY t.retry_at LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
""")
_COPY_FOR_RETRY = text("""
    INSERT INTO eventstore.chatbot_outbox
        (task_id, publication, sample_id, scenario, run_no, platform_creator_id, body, created_at, next_attempt_at,
         traceparent)
    SELECT task_id, :publication, sample_id, scenario, run_no, platform_creator_id, body, :now, :now, traceparent
    FROM eventstore.chatbot_outbox WHERE task_id = :task_id AND publication = 1
    ON CONFLICT DO NOTHING
""")


@dataclass(frozen=True)
class Issue:
    """A run decided to go out now: its event, and the task body its outbox row will carry."""

    issued: ChatbotTaskIssued
    event: NewEvent
    body: list[dict[str, Any]]

    @property
    def traceparent(self) -> str | None:
        return self.event.metadata.get("traceparent")


def _deferral(schedule: dict[str, Any], run_no: int, until: datetime) -> NewEvent:
    sample_id, scenario = schedule["sample_id"], Scenario(schedule["scenario"])
    deferred = ChatbotDispatchDeferred(sample_id=sample_id, scenario=scenario, run_no=run_no, until=until,
                                       due_at=schedule["due_at"])  # fmt: skip
    return NewEvent.of(
        deferred, stream_id=streams.chatbot_schedule(sample_id, scenario), metadata={"source": "dispatcher"},
        # The schedule's version is part of the decision: when the schedule is changed after a deferral
        # (moved by a later observation, or set back to its entry time by a revised history), the next
        # deferral is a new decision, not a duplicate of the old one, which would leave it due for
        # ever. Within one version the id is stable, so a pass repeated before the fold adds nothing.
        event_id=decision_id(deferred.type_name, sample_id, scenario, run_no, schedule["updated_position"],
                             schedule["due_at"].isoformat(), until.isoformat()),
    )  # fmt: skip


def _outbox_rows(decided: list[Issue], now: datetime) -> dict[str, Any]:
    return {
        "task_ids": [i.issued.task_id for i in decided],
        "sample_ids": [i.issued.sample_id for i in decided],
        "scenarios": [str(i.issued.scenario) for i in decided],
        "run_nos": [i.issued.run_no for i in decided],
        "creators": [i.issued.platform_creator_id for i in decided],
        "bodies": [json.dumps(i.body, ensure_ascii=False) for i in decided],
        "traceparents": [i.traceparent for i in decided],
        "now": now,
    }


@dataclass(frozen=True)
class DispatchReport:
    issued: int = 0
    deferred: int = 0
    retried: int = 0

    @property
    def total(self) -> int:
        return self.issued + self.deferred + self.retried

    @property
    def appended_types(self) -> frozenset[str]:
        """The types of the events the pass appended, for the projections that fold them."""
        counts = ((ChatbotTaskIssued, self.issued), (ChatbotDispatchDeferred, self.deferred),
                  (ChatbotRetryIssued, self.retried))  # fmt: skip
        return frozenset(kind.type_name for kind, count in counts if count)


class Dispatcher:
    def __init__(self, engine: AsyncEngine, settings: Settings, clock: Clock = utc_now, batch: int = 100,
                 telemetry: Telemetry | None = None) -> None:  # fmt: skip
        self._engine = engine
        self._single_statements = single_statements(engine)
        self._settings = settings
        self._clock = clock
        self._batch = batch
        # Off: no query for traces, and tasks carry none.
        self._carry_traces = telemetry is not None and telemetry.enabled

    async def dispatch_once(self) -> DispatchReport:
        now = self._clock()
        async with self._single_statements.connect() as conn:
            if not (await conn.execute(_ANYTHING_DUE, {"now": now})).scalar_one():
                return DispatchReport()
        async with self._engine.begin() as conn:
            await begin_appending(conn)  # claiming schedules (FOR UPDATE) is a write, before the appends
            issued, deferred = await self._dispatch_due(conn, now)
            retried = await self._retry_failed(conn, now)
        report = DispatchReport(issued, deferred, retried)
        if report.total:
            log.info("chatbot.dispatched", issued=issued, deferred=deferred, retried=retried)
        return report

    async def _dispatch_due(self, conn: AsyncConnection, now: datetime) -> tuple[int, int]:
        due = [dict(r) for r in (await conn.execute(_DUE, {"now": now, "limit": self._batch})).mappings()]
        if not due:
            return 0, 0
        recent: dict[str, list[datetime]] = {}
        creators = sorted({d["platform_creator_id"] for d in due})
        for creator, created_at in await conn.execute(_RECENT, {"creators": creators, "since": cap_window_start(now)}):
            recent.setdefault(creator, []).append(created_at)
        contexts = {r["sample_id"]: dict(r) for r in (await conn.execute(
            _CONTEXT, {"ids": [d["sample_id"] for d in due]})).mappings()}  # fmt: skip
        traces = await self._status_change_traces(conn, [d["sample_id"] for d in due])
        deferrals: list[NewEvent] = []
        issues: list[Issue] = []
        for schedule in due:
            creator = schedule["platform_creator_id"]
            run_no = schedule["run_count"] + 1
            when = dispatch_time(schedule["due_at"], now, quiet=self._settings.quiet_hours,
                                 tz=region_timezone(schedule["region"]), issued=recent.get(creator, []),
                                 cap=self._settings.chatbot_daily_cap)  # fmt: skip
            if when > now:
                deferrals.append(_deferral(schedule, run_no, when))
                continue
            issue = self._issue(schedule, run_no, contexts.get(schedule["sample_id"], {}), now,
                                traces.get(schedule["sample_id"], {}))  # fmt: skip
            issues.append(issue)
            recent.setdefault(creator, []).append(now)  # counts toward the cap of the rest of this pass
        # Every decision of the pass in one append, and the outbox rows in one insert.
        await append_events(conn, deferrals)
        recorded = await append_events(conn, [issue.event for issue in issues])
        decided = [issue for issue, new in zip(issues, recorded, strict=True) if new]
        if decided:  # only the transaction that decided a run writes its outbox row
            await conn.execute(_OUTBOX, _outbox_rows(decided, now))
        return len(decided), len(deferrals)

    async def _status_change_traces(self, conn: AsyncConnection, sample_ids: list[str]) -> dict[str, dict[str, str]]:
        """Per sample, the trace context of its latest status change (empty when it carries none)."""
        if not self._carry_traces:
            return {}
        found = await conn.execute(_STATUS_CHANGE_TRACES, {
            "stream_ids": [streams.sample(sample_id) for sample_id in sample_ids],
            "event_type": SampleStatusChanged.type_name,
        })  # fmt: skip
        by_stream = {row["stream_id"]: trace_context(dict(row)) for row in found.mappings()}
        return {sample_id: by_stream.get(streams.sample(sample_id), {}) for sample_id in sample_ids}

    def _issue(self, schedule: dict[str, Any], run_no: int, context: dict[str, Any], now: datetime,
               trace: dict[str, str]) -> Issue:  # fmt: skip
        sample_id, scenario = schedule["sample_id"], schedule["scenario"]
        the_task_id = task_id(sample_id, scenario, run_no)
        messages = build_messages(scenario, MessageContext(
            sample_id=sample_id, platform_product_id=context.get("platform_product_id"),
            product_name=context.get("product_name"), creator_has_whatsapp=bool(context.get("has_whatsapp")),
            link_template=self._settings.sample_link_template,
        ))  # fmt: skip
        body = [{
            "taskId": the_task_id, "sampleId": sample_id, "scenario": scenario, "region": schedule["region"],
            "platformCreatorId": schedule["platform_creator_id"], "platformCreatorUsername": context.get("username"),
            "platformProductId": context.get("platform_product_id"),
            "platformProductName": context.get("product_name"),
            "platformCampaignName": context.get("campaign_name"), "messages": messages,
        }]  # fmt: skip
        issued = ChatbotTaskIssued(
            task_id=the_task_id, sample_id=sample_id, scenario=Scenario(scenario), run_no=run_no,
            platform_creator_id=schedule["platform_creator_id"], region=schedule["region"], messages=messages,
            issued_at=now,
        )  # fmt: skip
        event = NewEvent.of(issued, stream_id=streams.chatbot_task(the_task_id),
                            metadata={"source": "dispatcher", **trace},
                            event_id=decision_id(issued.type_name, the_task_id))  # fmt: skip
        return Issue(issued, event, body)

    async def _retry_failed(self, conn: AsyncConnection, now: datetime) -> int:
        """A retryable failure is published again under the same task id, never in quiet hours."""
        retried = 0
        for row in (await conn.execute(_RETRIES, {"now": now, "limit": self._batch})).mappings().all():
            # Numbered from the projected count, not the outbox: until this retry is folded the same
            # number (and so the same decision id) comes out again, and nothing is issued twice.
            publication = next_publication(row["publications"])
            if publication is None:
                continue
            if after_quiet_hours(now, self._settings.quiet_hours, region_timezone(row["region"])) > now:
                continue
            retry = ChatbotRetryIssued(task_id=row["task_id"], publication=publication, at=now)
            (new,) = await append_events(conn, [NewEvent.of(
                retry, stream_id=streams.chatbot_retry(retry.task_id), metadata={"source": "dispatcher"},
                event_id=decision_id(retry.type_name, retry.task_id, publication),
            )])  # fmt: skip
            if new:
                await conn.execute(_COPY_FOR_RETRY, {"task_id": row["task_id"], "publication": publication, "now": now})
                retried += 1
        return retried
