"""`sample-ledger explain SAMPLE`: the whole story of one sample, from the projections and the log.

What the sample is now, how its status moved, what content it has, every event that mentions it, and
what the chatbot did about it and why. Read-only: six set queries, whatever the sample's history.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from events import streams
from events.catalog_events import CreatorMessagingChanged
from events.chatbot_events import (
    ChatbotDispatchDeferred,
    ChatbotResultReported,
    ChatbotRetryIssued,
    ChatbotTaskIssued,
    ChatbotTaskPublished,
)
from events.identity import creator_key, sample_id
from events.model import DomainEvent, UnknownEventType
from events.registry import event_from_data
from events.sample_events import (
    CrawlBatchRecorded,
    SampleContentObserved,
    SampleStatusChanged,
    StatusReported,
    WebhookReceived,
)
from projections import chatbot_rules as rules
from service.database import create_engine
from service.ops.failures import CommandFailed
from service.settings import Settings

Row = RowMapping

# Why a schedule was skipped or cancelled, as an operator would say it. Worker reasons that use the
# same codes read the same way; any other reason is shown as the worker wrote it.
REASONS: dict[str, str] = {
    rules.REGION_NOT_SUPPORTED: "region {region} does not get chatbot messages (see CHATBOT_REGIONS)",
    rules.NO_CREATOR_ID: "no platform creator id is known, and messages can only go to one",
    rules.CREATOR_OPTED_OUT: "the creator opted out of chatbot messages",
    rules.SAMPLE_LEFT_STATUS: "the sample left the status this message was about before it went out",
    rules.CONTENT_OBSERVED: "content was seen, so the reminder is no longer needed",
}

_FIND = text("""
    SELECT * FROM projections.samples
    WHERE sample_id = ANY(CAST(:ids AS text[]))
       OR (region = :region AND platform_product_id = :product
           AND (platform_creator_id = :creator OR ltrim(lower(btrim(platform_creator_username)), '@') = :handle))
    ORDER BY sample_id
""")
_HISTORY = text("""
    SELECT from_status, to_status, observed_at, source, regression FROM projections.sample_status_history
    WHERE sample_id = :id ORDER BY observed_at, event_position, seq
""")
_CONTENTS = text("""
    SELECT content_type, title, posted_at, view_count, like_count, comment_count, order_count, order_amount,
           first_seen_at, last_seen_at
    FROM projections.sample_contents WHERE sample_id = :id ORDER BY first_seen_at, posted_at, title
""")
_SCHEDULES = text("""
    SELECT scenario, state, due_at, run_count, max_runs, skip_reason, last_run_at FROM projections.chatbot_schedules
    WHERE sample_id = :id ORDER BY array_position(ARRAY['shipped', 'content_pending', 'no_content'], scenario)
""")
_TASKS = text("""
    SELECT task_id, scenario, run_no, issued_at, published_at, publications, outcome, outcome_reason, outcome_at,
           retry_at
    FROM projections.chatbot_tasks WHERE sample_id = :id ORDER BY issued_at, run_no
""")
# One UNION branch per way an event can name the sample, each on an index: its derived stream; the
# inbound messages whose observations changed it (status history, last change, joined webhooks, causes
# of derived events); the chatbot's decisions and each of its tasks' streams; its creator's opt-outs.
# Stream prefixes and type names come in as parameters from `events`, their one home.
_EVENTS = text("""
    WITH derived AS (SELECT metadata FROM eventstore.events WHERE stream_id = :sample_stream),
    tasks AS (SELECT data->>'task_id' AS task_id FROM eventstore.events
              WHERE event_type = :task_issued AND data->>'sample_id' = :id),
    mentions AS (
        SELECT position FROM eventstore.events WHERE stream_id IN (:sample_stream, :creator_stream)
        UNION SELECT event_position FROM projections.sample_status_history WHERE sample_id = :id
        UNION SELECT last_event_position FROM projections.samples WHERE sample_id = :id
        UNION SELECT event_position FROM projections.webhooks WHERE sample_id = :id
        UNION SELECT e.position FROM eventstore.events e
              WHERE e.event_id IN (SELECT CAST(metadata->>'causation_id' AS uuid) FROM derived)
        UNION SELECT position FROM eventstore.events
              WHERE event_type IN (:task_issued, :dispatch_deferred) AND data->>'sample_id' = :id
        UNION SELECT e.position FROM eventstore.events e JOIN tasks t ON e.stream_id IN (
              :task_prefix || t.task_id, :publication_prefix || t.task_id, :retry_prefix || t.task_id))
    SELECT e.position, e.recorded_at, e.event_type, e.data, e.metadata
    FROM eventstore.events e JOIN mentions m USING (position) ORDER BY e.position
""")


def event_parameters(sample_id: str, creator: str) -> dict[str, str]:
    return {
        "id": sample_id,
        "sample_stream": streams.sample(sample_id),
        "creator_stream": streams.creator(creator),
        "task_prefix": streams.CHATBOT_TASK,
        "publication_prefix": streams.CHATBOT_PUBLICATION,
        "retry_prefix": streams.CHATBOT_RETRY,
        "task_issued": ChatbotTaskIssued.type_name,
        "dispatch_deferred": ChatbotDispatchDeferred.type_name,
    }


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def why(code: str | None, region: str) -> str:
    """A reason code as a sentence, with the code kept for whoever searches the logs for it."""
    if not code:
        return "no reason recorded"
    sentence = REASONS.get(code)
    return f"{sentence.format(region=region)} ({code})" if sentence else code


def parse_reference(reference: str) -> tuple[list[str], dict[str, str]]:
    """Candidate sample ids, and the (region, product, creator) to match, for a sample id or REGION/PRODUCT/CREATOR."""
    reference = reference.strip()
    try:  # by id alone: the empty (region, product, creator) matches no row
        return [str(uuid.UUID(reference))], {"region": "", "product": "", "creator": "", "handle": ""}
    except ValueError:
        pass
    parts = [part.strip() for part in reference.split("/")]
    if len(parts) != 3 or not all(parts):
        raise CommandFailed(f"cannot read {reference!r}: give a sample id or REGION/PRODUCT_ID/CREATOR")
    region, product, creator = parts[0].upper(), parts[1], parts[2]
    handle = creator_key(None, creator) or creator
    # The creator may be a platform id or an @handle, and a sample is keyed by its id when one was seen.
    ids = sorted({sample_id(region, product, creator), sample_id(region, product, handle)})
    return ids, {"region": region, "product": product, "creator": creator, "handle": handle}


async def find_sample(conn: AsyncConnection, reference: str) -> Row:
    ids, match = parse_reference(reference)
    found = (await conn.execute(_FIND, {"ids": ids, **match})).mappings().all()
    if not found:
        looked_up = f"sample id {' or '.join(ids)}"
        if match["region"]:
            looked_up += (
                f", or region {match['region']} product {match['product']} creator id/@handle {match['creator']}"
            )
        raise CommandFailed(f"no sample {reference.strip()!r} in projections.samples (looked up {looked_up})")
    if len(found) > 1:
        listed = ", ".join(row["sample_id"] for row in found)
        raise CommandFailed(f"{reference.strip()!r} matches {len(found)} samples ({listed}); explain one by its id")
    return found[0]


def sample_lines(s: Row) -> list[str]:
    creator = s["platform_creator_id"] or "no creator id"
    if s["platform_creator_username"]:
        creator += f" @{s['platform_creator_username'].lstrip('@')}"
    if s["content_count"] is None:
        content = "never looked at"
    elif s["content_count"] == 0:
        content = f"none in the latest look ({when(s['content_observed_at'])})"
    else:
        content = f"{s['content_count']} video(s)/LIVE(s) in the latest look ({when(s['content_observed_at'])})"
    return [
        f"Sample {s['sample_id']}",
        f"  region {s['region']}, product {s['platform_product_id']}, creator {creator}",
        f"  product      {s['product_name'] or '-'} (campaign {s['platform_campaign_name'] or '-'})",
        f"  status       {s['status'] or '-'} since {when(s['status_changed_at'])}, source {s['status_source'] or '-'}"
        + (f", cancel reason {s['cancel_reason']}" if s["cancel_reason"] else ""),
        f"  content      {content}",
        f"  seen         first {when(s['first_seen_at'])}, last {when(s['last_seen_at'])}",
        f"  application  {s['application_id'] or 'none known'}",
    ]


def history_lines(history: Sequence[Row]) -> list[str]:
    lines = ["Status history (by observation time)"]
    for h in history:
        move = f"{h['from_status'] or '(new)'} → {h['to_status']}"
        flag = "  REGRESSION (a move backwards: never triggers a message)" if h["regression"] else ""
        lines.append(f"  {when(h['observed_at'])}  {move:<32} source {h['source']}{flag}")
    return lines if history else [*lines, "  none recorded"]


def content_lines(contents: Sequence[Row]) -> list[str]:
    lines = ["Contents"]
    for c in contents:
        numbers = (
            f"{c['view_count'] or 0} views, {c['like_count'] or 0} likes, {c['comment_count'] or 0} comments, "
            f"{c['order_count'] or 0} orders ({c['order_amount'] or 0})"
        )
        lines.append(f"  {c['content_type']} {c['title']!r} posted {c['posted_at'] or '?'}: {numbers}")
        lines.append(f"    seen {when(c['first_seen_at'])} to {when(c['last_seen_at'])}")
    return lines if contents else [*lines, "  none recorded"]


def describe_event(event: DomainEvent, meta: Mapping[str, Any]) -> str:
    """What one event says about the sample, with where it came from (inbound, derived or chatbot)."""
    match event:
        case CrawlBatchRecorded():
            return (
                f"inbound crawl batch from {event.source}, message {meta.get('message_id')} ({len(event.rows)} row(s))"
            )
        case StatusReported():
            observed = event.observed_at.isoformat()
            return f"inbound status report from {event.source}: {event.status} observed {observed}"
        case WebhookReceived():
            return f"inbound TikTok webhook type {event.type}, notification {event.notification_id}"
        case SampleStatusChanged():
            return (f"derived: status {event.from_status or '(new)'} → {event.to_status}, source {event.source}"
                    + (" REGRESSION" if event.regression else ""))  # fmt: skip
        case SampleContentObserved():
            return f"derived: content seen, {event.content_count} item(s)"
        case ChatbotTaskIssued():
            return f"chatbot: task {event.task_id} issued ({event.scenario} run {event.run_no})"
        case ChatbotDispatchDeferred():
            return (f"chatbot: {event.scenario} run {event.run_no} deferred until {event.until.isoformat()} "
                    "(quiet hours or the daily cap)")  # fmt: skip
        case ChatbotTaskPublished():
            return f"chatbot: task {event.task_id} confirmed by the broker (publication {event.publication})"
        case ChatbotRetryIssued():
            return f"chatbot: task {event.task_id} to be sent again (publication {event.publication})"
        case ChatbotResultReported():
            return f"inbound worker result: task {event.task_id} {event.outcome}" + _reason(event.reason)
        case CreatorMessagingChanged():
            change = "opted out" if event.opted_out else "opted in again"
            return f"inbound operator change: creator {change}" + _reason(event.reason)
    return f"{event.type_name} from {meta.get('source')}"


def _reason(reason: str | None) -> str:
    return f" ({reason})" if reason else ""


def event_lines(events: Sequence[Row]) -> list[str]:
    lines = ["Events that mention it (log order)"]
    for e in events:
        try:
            said = describe_event(event_from_data(e["event_type"], e["data"]), e["metadata"])
        except (UnknownEventType, ValidationError) as exc:  # an operator tool shows what it cannot read
            said = f"{e['event_type']} (unreadable here: {type(exc).__name__})"
        lines.append(f"  #{e['position']:<6} {when(e['recorded_at'])}  {said}")
    lines.append("  (inbound messages are listed when they changed the sample; a crawl that saw it unchanged is not)")
    return lines


def schedule_lines(schedules: Sequence[Row], region: str) -> list[str]:
    lines = ["Chatbot schedules"]
    for s in schedules:
        runs = f"{s['run_count']}/{s['max_runs']} runs"
        state = {
            "pending": f"pending, due {when(s['due_at'])}",
            "dispatched": f"dispatched {when(s['last_run_at'])}, waiting for the worker's outcome",
            "done": "done",
        }.get(s["state"], f"{s['state']}: {why(s['skip_reason'], region)}")
        lines.append(f"  {s['scenario']:<16} {state}; {runs}")
    return lines if schedules else [*lines, "  none (no status so far called for a message)"]


def task_lines(tasks: Sequence[Row], region: str) -> list[str]:
    lines = ["Chatbot tasks"]
    for t in tasks:
        published = "not yet published"
        if t["published_at"] is not None:
            published = f"published {when(t['published_at'])} ({t['publications']} publication(s))"
        outcome = "no outcome yet"
        if t["outcome"] is not None:
            outcome = f"outcome {t['outcome']} at {when(t['outcome_at'])}"
            outcome += f": {why(t['outcome_reason'], region)}" if t["outcome_reason"] else ""
        retry = f", retry at {when(t['retry_at'])}" if t["retry_at"] else ""
        lines.append(f"  task {t['task_id']} {t['scenario']} run {t['run_no']}: issued {when(t['issued_at'])}")
        lines.append(f"    {published}; {outcome}{retry}")
    return lines if tasks else [*lines, "  none"]


async def _all(conn: AsyncConnection, query: Any, **params: Any) -> list[Row]:
    return list((await conn.execute(query, params)).mappings().all())


async def explain_sample(settings: Settings, reference: str) -> list[str]:
    """The whole story of one sample (by id or REGION/PRODUCT/CREATOR): state, history, contents, events, chatbot."""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        # One repeatable-read snapshot: every section describes the same moment.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            sample = await find_sample(conn, reference)
            sid, region = sample["sample_id"], sample["region"]
            creator = sample["platform_creator_id"] or ""
            return [
                *sample_lines(sample),
                *history_lines(await _all(conn, _HISTORY, id=sid)),
                *content_lines(await _all(conn, _CONTENTS, id=sid)),
                *event_lines(await _all(conn, _EVENTS, **event_parameters(sid, creator))),
                *schedule_lines(await _all(conn, _SCHEDULES, id=sid), region),
                *task_lines(await _all(conn, _TASKS, id=sid), region),
            ]
    finally:
        await engine.dispose()
