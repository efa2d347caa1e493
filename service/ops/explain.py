"""`sample-ledger explain SAMPLE`: the whole story of one sample, from the projections and the log.

What the sample is now, how its status moved, what content it has, every event that mentions it, and
what the chatbot did about it and why, including why nothing happened: a stale observation is marked
as ignored, and a status change that scheduled no message names the rule. Read-only: six set
queries, whatever the sample's history.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    SampleHistoryRevised,
    SampleStatusChanged,
    StatusReported,
    WebhookReceived,
)
from events.statuses import Status
from projections import chatbot_rules as rules
from projections.crawl_reading import read_crawl_batch
from projections.sample_inputs import read_status_report, read_webhook
from projections.sample_state import Observation
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
    SELECT from_status, to_status, observed_at, source, regression, event_position
    FROM projections.sample_status_history
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
# of derived events); the chatbot's decisions and each of its tasks' streams; its creator's opt-outs;
# status reports on its product, stale ones included (those about another creator are dropped after
# reading them, in `observation_notes`).
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
        UNION SELECT position FROM eventstore.events
              WHERE event_type = :status_reported
                AND coalesce(data->>'platformProductId', data->>'platform_product_id') = :product
        UNION SELECT e.position FROM eventstore.events e JOIN tasks t ON e.stream_id IN (
              :task_prefix || t.task_id, :publication_prefix || t.task_id, :retry_prefix || t.task_id))
    SELECT e.position, e.recorded_at, e.event_type, e.data, e.metadata
    FROM eventstore.events e JOIN mentions m USING (position) ORDER BY e.position
""")


def event_parameters(sample_id: str, creator: str, product: str = "") -> dict[str, str]:
    return {
        "id": sample_id,
        "product": product,
        "status_reported": StatusReported.type_name,
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
                    + (" REGRESSION" if event.regression else "")
                    + (f", content seen, {event.content_count} item(s)" if event.content_changed else ""))  # fmt: skip
        case SampleContentObserved():
            return f"derived: content seen, {event.content_count} item(s)"
        case SampleHistoryRevised():
            moves = " → ".join(str(s.to_status) for s in event.steps if s.to_status is not None)
            return f"derived: history folded again in time order after a late observation: {moves or '(no status)'}"
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


@dataclass(frozen=True)
class StatusSeen:
    """A status observation of this sample that an inbound event carried."""

    position: int
    status: str
    observed_at: datetime


def _observed(row: Row, sid: str) -> StatusSeen | None:
    """What status an inbound event observed for this sample, and when (None: it observed none)."""
    meta: Mapping[str, Any] = row["metadata"] or {}
    received = meta.get("received_at")
    received_at = datetime.fromisoformat(received) if received else row["recorded_at"]
    try:
        event = event_from_data(row["event_type"], row["data"])
        observations: list[Observation] = []
        match event:
            case CrawlBatchRecorded():
                observations = read_crawl_batch(event, received_at).observations
            case StatusReported():
                observations = [read_status_report(event)]
            case WebhookReceived():
                webhook = read_webhook(event, received_at)
                if webhook.change is not None and webhook.change.status is not None:
                    return StatusSeen(row["position"], webhook.change.status, webhook.observed_at)
    except Exception:  # an operator tool explains what it can read; `event_lines` says what it cannot
        return None
    mine = [o for o in observations if o.sample_id == sid and o.status is not None]
    return StatusSeen(row["position"], str(mine[0].status), mine[0].observed_at) if mine else None


def observation_notes(events: Sequence[Row], history: Sequence[Row], sid: str) -> dict[int, str | None]:
    """Per inbound event that observed a status of this sample: None when it was applied, else why it
    was ignored. An observation older than the newest one already applied is stale (docs/domain.md,
    "Ordering"); the note names that newer observation. Status reports about the product's other
    samples are left out (the map has no entry for them).

    The newest applied observation is followed through the listed events; a crawl that saw the sample
    unchanged is not listed, so a stale observation is also recognised by what did not happen: it
    named another status than the sample had, and no status change came of it."""
    changed_at = {h["event_position"] for h in history}
    # The status in effect when each observation was made: the history is in time order (a late
    # observation is folded where it belongs), not in the order the events were recorded.
    moves = sorted((h["observed_at"], h["event_position"], h["to_status"]) for h in history)
    notes: dict[int, str | None] = {}
    newest: StatusSeen | None = None
    for row in events:
        seen = _observed(row, sid)
        if seen is None:
            continue
        before = [to for at, position, to in moves
                  if at < seen.observed_at or (at == seen.observed_at and position < seen.position)]  # fmt: skip
        status_then = before[-1] if before else None
        # A late observation that moved the history (folded where it belongs in time) was applied.
        stale = newest is not None and seen.observed_at < newest.observed_at and seen.position not in changed_at
        if not stale and seen.position not in changed_at and status_then not in (None, seen.status):
            stale = True  # another status, and nothing changed: a newer observation had been applied
        if not stale:
            notes[seen.position] = None
            if newest is None or seen.observed_at >= newest.observed_at:
                newest = seen
            continue
        winner = "a newer observation not listed here (a crawl that saw the sample unchanged)"
        if newest is not None and newest.observed_at > seen.observed_at:
            winner = f"{newest.status} observed {when(newest.observed_at)} (#{newest.position})"
        notes[seen.position] = (
            f"IGNORED (stale): {seen.status} observed {when(seen.observed_at)} is older than the observation "
            f"that wins: {winner}"
        )
    return notes


def event_said(e: Row) -> str:
    try:
        return describe_event(event_from_data(e["event_type"], e["data"]), e["metadata"])
    except (UnknownEventType, ValidationError) as exc:  # an operator tool shows what it cannot read
        return f"{e['event_type']} (unreadable here: {type(exc).__name__})"


_QUARANTINED = text("""
    SELECT event_position, string_agg('QUARANTINED by ' || projection || ' (not applied): ' || error, '; '
                                      ORDER BY projection) AS said
    FROM projections.quarantined_events WHERE event_position = ANY(:positions) GROUP BY event_position
""")


def event_lines(events: Sequence[Row], notes: Mapping[int, str | None] | None = None,
                quarantined: Mapping[int, str] | None = None) -> list[str]:  # fmt: skip
    lines = ["Events that mention it (log order)"]
    for e in events:
        said = event_said(e)
        for note in ((notes or {}).get(e["position"]), (quarantined or {}).get(e["position"])):
            said += f"  {note}" if note else ""
        lines.append(f"  #{e['position']:<6} {when(e['recorded_at'])}  {said}")
    lines.append("  (inbound messages are listed when they changed the sample, status reports always; a crawl that saw "
                 "it unchanged is not)")  # fmt: skip
    return lines


ONE_SHOT = {str(status): str(scenario) for status, scenario in rules.ONE_SHOT_STATUSES.items()}


def why_no_schedule(history: Sequence[Row], sample: Row) -> list[str]:
    """Why no status change so far scheduled a chatbot message, one reason per change (the rules of
    `projections/chatbot_rules.py`, docs/domain.md "Scenarios")."""
    if not history:
        return ["no status recorded yet, and only a status change schedules a message"]
    reasons = []
    for h in history:
        to, moved = h["to_status"], f"{h['from_status'] or '(new)'} → {h['to_status']} ({when(h['observed_at'])})"
        if h["regression"]:
            reasons.append(f"{moved}: a regression (a move backwards) never triggers a message")
        elif h["from_status"] is None and to in ONE_SHOT:
            reasons.append(
                f"{moved}: first sightings never trigger a message (a first sighting in {to} is a collector "
                "back-filling history)"
            )
        elif to == str(Status.COMPLETED):
            count = sample["content_count"]
            content = "content was never looked at" if count is None else f"{count} content item(s) seen"
            reasons.append(f"{moved}: the no_content reminder needs content known to be empty, and {content}")
        else:
            reasons.append(f"{moved}: {to} calls for no message (only shipped, content_pending, and completed "
                           "with no content do)")  # fmt: skip
    return reasons


def _pending_text(due: datetime | None, now: datetime) -> str:
    if due is None or due > now:
        return f"pending, due {when(due)} (not due yet)"
    return (f"pending, due {when(due)}; due now: it goes out at the dispatcher's next pass unless quiet hours or "
            "the daily cap defer it")  # fmt: skip


def schedule_text(s: Row, region: str, now: datetime) -> str:
    runs = f"{s['run_count']}/{s['max_runs']} runs"
    state = {
        "dispatched": f"dispatched {when(s['last_run_at'])}, waiting for the worker's outcome",
        "done": "done",
    }.get(s["state"], f"{s['state']}: {why(s['skip_reason'], region)}")
    if s["state"] == "pending":
        state = _pending_text(s["due_at"], now)
    return f"{state}; {runs}"


def schedule_lines(
    schedules: Sequence[Row], region: str, no_schedule: Sequence[str] = (), now: datetime | None = None
) -> list[str]:
    lines = ["Chatbot schedules"]
    moment = now or datetime.now(UTC)
    for s in schedules:
        lines.append(f"  {s['scenario']:<16} {schedule_text(s, region, moment)}")
    if schedules:
        return lines
    return [*lines, *(f"  none: {reason}" for reason in no_schedule or ["no status so far called for a message"])]


def why_no_task(schedules: Sequence[Row], region: str) -> str:
    """Why no chatbot task was issued for the sample."""
    if not schedules:
        return "nothing was sent: no schedule, see Chatbot schedules"
    pending = [s for s in schedules if s["state"] == "pending"]
    if pending:
        return f"nothing was sent yet: {pending[0]['scenario']} is pending, due {when(pending[0]['due_at'])}"
    reasons = "; ".join(f"{s['scenario']} {s['state']}, {why(s['skip_reason'], region)}" for s in schedules)
    return f"nothing was sent: {reasons}"


def task_text(t: Row, region: str) -> tuple[str, str]:
    published = "not yet published"
    if t["published_at"] is not None:
        published = f"published {when(t['published_at'])} ({t['publications']} publication(s))"
    outcome = "no outcome yet"
    if t["outcome"] is not None:
        outcome = f"outcome {t['outcome']} at {when(t['outcome_at'])}"
        outcome += f": {why(t['outcome_reason'], region)}" if t["outcome_reason"] else ""
    retry = f", retry at {when(t['retry_at'])}" if t["retry_at"] else ""
    waiting = ""
    if t["published_at"] is None:
        waiting = " (waiting in the outbox for the broker's confirmation; `sample-ledger status` shows its last error)"
    issued = f"task {t['task_id']} {t['scenario']} run {t['run_no']}: issued {when(t['issued_at'])}"
    return issued, f"{published}; {outcome}{retry}{waiting}"


def task_lines(tasks: Sequence[Row], region: str, schedules: Sequence[Row] | None = None) -> list[str]:
    if not tasks:
        # The section's one line stays "none"; the heading says why.
        heading = "Chatbot tasks" if schedules is None else f"Chatbot tasks ({why_no_task(schedules, region)})"
        return [heading, "  none"]
    lines = ["Chatbot tasks"]
    for t in tasks:
        issued, state = task_text(t, region)
        lines += [f"  {issued}", f"    {state}"]
    return lines


@dataclass(frozen=True)
class Story:
    """Everything `explain` read about one sample, from one snapshot."""

    sample: Row
    history: list[Row]
    contents: list[Row]
    events: list[Row]
    notes: dict[int, str | None]
    schedules: list[Row]
    tasks: list[Row]
    quarantined: dict[int, str] = field(default_factory=dict)  # position -> which projections and why

    @property
    def region(self) -> str:
        return str(self.sample["region"])


async def _all(conn: AsyncConnection, query: Any, **params: Any) -> list[Row]:
    return list((await conn.execute(query, params)).mappings().all())


async def read_story(settings: Settings, reference: str) -> Story:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        # One repeatable-read snapshot: every section describes the same moment.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            sample = await find_sample(conn, reference)
            sid = sample["sample_id"]
            creator, product = sample["platform_creator_id"] or "", sample["platform_product_id"]
            history = await _all(conn, _HISTORY, id=sid)
            events = await _all(conn, _EVENTS, **event_parameters(sid, creator, product))
            notes = observation_notes(events, history, sid)
            quarantined = await _all(conn, _QUARANTINED, positions=[e["position"] for e in events])
            # Status reports on the product's other samples came along with the query: drop them. One
            # that could not be folded (quarantined) cannot be told apart, so it stays.
            ours = {*notes, *(h["event_position"] for h in history), sample["last_event_position"],
                    *(q["event_position"] for q in quarantined)}  # fmt: skip
            reports = StatusReported.type_name
            events = [e for e in events if e["event_type"] != reports or e["position"] in ours]
            return Story(
                sample=sample,
                history=history,
                contents=await _all(conn, _CONTENTS, id=sid),
                events=events,
                notes=notes,
                schedules=await _all(conn, _SCHEDULES, id=sid),
                tasks=await _all(conn, _TASKS, id=sid),
                quarantined={q["event_position"]: q["said"] for q in quarantined},
            )
    finally:
        await engine.dispose()


def story_lines(story: Story) -> list[str]:
    return [
        *sample_lines(story.sample),
        *history_lines(story.history),
        *content_lines(story.contents),
        *event_lines(story.events, story.notes, story.quarantined),
        *schedule_lines(story.schedules, story.region, why_no_schedule(story.history, story.sample)),
        *task_lines(story.tasks, story.region, story.schedules),
    ]


def _plain(row: Row, leave_out: Sequence[str] = ()) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in leave_out}


def story_document(story: Story) -> dict[str, Any]:
    """The story as one JSON-ready document (times and numbers as `json.dumps(default=str)` writes them)."""
    now = datetime.now(UTC)
    events = [
        {"position": e["position"], "recorded_at": e["recorded_at"], "event_type": e["event_type"],
         "said": event_said(e), "ignored": story.notes.get(e["position"]),
         "quarantined": story.quarantined.get(e["position"])}
        for e in story.events
    ]  # fmt: skip
    return {
        "sample": _plain(story.sample),
        "status_history": [_plain(h) for h in story.history],
        "contents": [_plain(c) for c in story.contents],
        "events": events,
        "chatbot_schedules": [{**_plain(s), "explained": schedule_text(s, story.region, now)} for s in story.schedules],
        "why_no_schedule": [] if story.schedules else why_no_schedule(story.history, story.sample),
        "chatbot_tasks": [{**_plain(t), "explained": " ".join(task_text(t, story.region))} for t in story.tasks],
        "why_no_task": None if story.tasks else why_no_task(story.schedules, story.region),
    }


async def explain_sample(settings: Settings, reference: str) -> list[str]:
    """The whole story of one sample (by id or REGION/PRODUCT/CREATOR): state, history, contents, events, chatbot."""
    return story_lines(await read_story(settings, reference))


async def explain_document(settings: Settings, reference: str) -> dict[str, Any]:
    """`explain --json`: the same story as one document."""
    return story_document(await read_story(settings, reference))
