"""The samples read model: `projections.samples`, `sample_contents`, `sample_status_history`,
`crawl_batches`, `webhooks` and `pending_webhooks`.

Events are folded a page at a time: read every event of the page (pure), load the states of every
sample they touch in one query per kind, fold in memory in log order, then write each table once.
Status and content changes are returned as derived events, which the runner appends (`sample.status_changed`,
`sample.content_observed`) with ids derived from their cause, so a rebuild appends nothing.

A type-56 webhook joins its sample by application id, else by (product id, creator id). One that
joins nothing yet waits in `pending_webhooks` and is applied when an observation introduces its
sample; ordering by `observed_at` then decides whether it still moves the status or is stale.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from events.recorded import NewEvent, RecordedEvent
from events.sample_events import CrawlBatchRecorded, StatusReported, WebhookReceived
from projections import samples_store as store
from projections.crawl_reading import BatchReading, read_crawl_batch
from projections.sample_fold import SampleFold, WaitingWebhook, waiting_from_row
from projections.sample_inputs import WebhookReading, read_status_report, read_webhook, webhook_observation
from projections.sample_state import Observation

Reading = BatchReading | Observation | WebhookReading
T = TypeVar("T")


def read_event(event: RecordedEvent) -> Reading:
    match event.event:
        case CrawlBatchRecorded() as batch:
            return read_crawl_batch(batch, event.received_at)
        case StatusReported() as report:
            return read_status_report(report)
        case WebhookReceived() as webhook:
            return read_webhook(webhook, event.received_at)
        case other:
            raise TypeError(f"the samples projection does not fold {other.type_name}")


def read_events(events: Sequence[RecordedEvent]) -> list[tuple[RecordedEvent, Reading]]:
    return [(event, read_event(event)) for event in events]


def fold_events(fold: SampleFold, readings: Sequence[tuple[RecordedEvent, Reading]]) -> None:
    """Fold a page in log order (pure: `fold` holds every state the page can touch)."""
    for event, reading in readings:
        if isinstance(reading, BatchReading):
            on_crawl_batch_recorded(fold, event, reading)
        elif isinstance(reading, Observation):
            on_status_reported(fold, event, reading)
        else:
            on_webhook_received(fold, event, reading)


def on_crawl_batch_recorded(fold: SampleFold, event: RecordedEvent, reading: BatchReading) -> None:
    new = changed = 0
    for obs in reading.observations:
        before = fold.states.get(obs.sample_id)
        outcome = fold.observe(event, obs)
        if before is None:
            new += 1
        elif before.fingerprint() != outcome.state.fingerprint():
            changed += 1
    for sighting in reading.contents:
        fold.see_content(sighting)
    fold.batches.append({
        "message_id": event.metadata.get("message_id") or event.stream_id,
        "event_position": event.position,
        "source": reading.source,
        "received_at": event.received_at,
        "content_expanded": reading.content_expanded,
        "rows_total": reading.rows_total,
        "rows_rejected": len(reading.rejected),
        "rejections": json.dumps([{"row": r.index, "reason": r.reason} for r in reading.rejected]),
        "samples_new": new,
        "samples_changed": changed,
    })  # fmt: skip


def on_status_reported(fold: SampleFold, event: RecordedEvent, observation: Observation) -> None:
    fold.observe(event, observation)


def on_webhook_received(fold: SampleFold, event: RecordedEvent, reading: WebhookReading) -> None:
    webhook = event.event
    assert isinstance(webhook, WebhookReceived)
    row: dict[str, Any] = {
        "event_position": event.position, "notification_id": webhook.notification_id, "type": webhook.type,
        "shop_id": webhook.shop_id, "creator_open_id": webhook.creator_open_id, "occurred_at": webhook.timestamp,
        "received_at": event.received_at, "signature_valid": webhook.signature_valid,
        "application_id": reading.change.application_id if reading.change else None,
        "new_status": reading.change.raw_status if reading.change else None,
        "disposition": "unknown_status" if reading.unknown_status else "recorded", "sample_id": None,
    }  # fmt: skip
    fold.webhooks[event.position] = row
    if reading.change is None:
        return
    target = fold.find(reading.change)
    if target is None:
        fold.wait(WaitingWebhook(event.position, reading.change, reading.observed_at))
        row["disposition"] = "waiting_for_sample"
        return
    outcome = fold.observe(event, webhook_observation(target, reading.change, reading.observed_at))
    row.update(disposition="stale" if outcome.stale else "applied", sample_id=target.sample_id)


async def load_fold(
    conn: AsyncConnection,
    readings: Sequence[tuple[RecordedEvent, Reading]],
    *,
    sightings_after: int = 0,
    timelines_of: Iterable[str] = (),
) -> SampleFold:
    """Every state, content row and waiting webhook the page can touch, in four queries; and the
    sightings of `timelines_of`, the samples that a first fold of the page found late observations of."""
    observations = [o for _, r in readings for o in _observations(r)]
    changes = [r.change for _, r in readings if isinstance(r, WebhookReading) and r.change is not None]
    states = await store.load_states(conn, {o.sample_id for o in observations})
    states.update(await store.load_joined_states(
        conn, [c.application_id for c in changes if c.application_id],
        [(c.platform_product_id, c.platform_creator_id) for c in changes
         if c.platform_product_id and c.platform_creator_id]))  # fmt: skip
    app_ids = [o.facts["application_id"] for o in observations if o.facts.get("application_id")]
    app_ids += [s.application_id for s in states.values() if s.application_id]
    pairs = [(o.platform_product_id, o.facts["platform_creator_id"]) for o in observations
             if o.facts.get("platform_creator_id")]  # fmt: skip
    contents = [(s.sample_id, s.item.key) for _, r in readings if isinstance(r, BatchReading) for s in r.contents]
    fold = SampleFold(
        states,
        stored_contents=await store.load_contents(conn, contents),
        timelines=await store.load_sightings(conn, timelines_of),
        sightings_after=sightings_after,
    )
    for row in await store.load_waiting(conn, app_ids, pairs):
        fold.waiting[row["event_position"]] = waiting_from_row(row)
    return fold


def _observations(reading: Reading) -> list[Observation]:
    if isinstance(reading, BatchReading):
        return reading.observations
    return [reading] if isinstance(reading, Observation) else []


class SamplesProjection:
    name = "samples"
    event_types = (CrawlBatchRecorded.type_name, StatusReported.type_name, WebhookReceived.type_name)
    derives_events = True  # status changes, content observations, revised histories
    tables = (
        "projections.samples",
        "projections.sample_contents",
        "projections.sample_status_history",
        "projections.crawl_batches",
        "projections.webhooks",
        "projections.pending_webhooks",
        "projections.sample_sightings",
    )

    def __init__(self) -> None:
        self._sightings_after: int | None = None  # fixed by migration 0008: read once

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        readings: list[tuple[RecordedEvent, Reading]] = []
        await in_turns(events, lambda some: readings.extend(read_events(some)))
        if self._sightings_after is None:
            self._sightings_after = await store.sightings_after(conn)
        after = self._sightings_after
        timelines_of: set[str] = set()
        while True:
            fold = await load_fold(conn, readings, sightings_after=after, timelines_of=timelines_of)
            await in_turns(readings, lambda some: fold_events(fold, some))  # noqa: B023 (awaited here)
            if not fold.missing:
                break
            # Late observations about samples whose sightings were not loaded (rare: a collector reading
            # an old page, a delayed webhook): fold the page again from the tables, with them.
            timelines_of |= fold.missing
        await fold.write(conn)
        return fold.derived


# A page of 500 crawl batches is 25,000 rows and seconds of work for one core. The event loop gets a
# turn after every few events, so intake, acknowledgements and the broker's heartbeats are not held
# up behind a fold (the fold's state is this call's own, so nothing can change under it).
EVENTS_PER_TURN = 2


async def in_turns(items: Sequence[T], work: Callable[[Sequence[T]], object]) -> None:
    for start in range(0, len(items), EVENTS_PER_TURN):
        work(items[start : start + EVENTS_PER_TURN])
        await asyncio.sleep(0)
