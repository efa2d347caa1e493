"""The samples read model: `projections.samples`, `sample_contents`, `sample_status_history`,
`crawl_batches`.

Events are folded a page at a time: read every event of the page (pure), load the states of every
sample they touch in one query, fold in memory in log order, then write each table once. Status and
content changes are appended back to the log as derived events (`sample.status_changed`,
`sample.content_observed`) with ids derived from their cause, so a rebuild re-derives the same ids
and appends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from events.envelope import (
    CRAWL_BATCH_RECORDED,
    SAMPLE_CONTENT_OBSERVED,
    SAMPLE_STATUS_CHANGED,
    NewEvent,
    RecordedEvent,
    derived_event_id,
)
from projections import samples_store as store
from projections.crawl_reading import BatchReading, ContentSighting, read_crawl_batch
from projections.sample_state import Observation, Outcome, SampleState, apply_observation
from service.eventstore import append_events


def received_at(event: RecordedEvent) -> datetime:
    raw = event.metadata.get("received_at")
    return datetime.fromisoformat(raw) if raw else event.recorded_at


class SampleFold:
    """In-memory fold of one page of events; `write` persists it."""

    def __init__(self, states: dict[str, SampleState]) -> None:
        self.states = dict(states)
        self.touched: dict[str, int] = {}
        self.history: list[dict[str, Any]] = []
        self.contents: dict[tuple[str, str], dict[str, Any]] = {}
        self.batches: list[dict[str, Any]] = []
        self.derived: list[NewEvent] = []

    def observe(self, event: RecordedEvent, obs: Observation) -> Outcome:
        outcome = apply_observation(self.states.get(obs.sample_id), obs)
        if outcome.state != self.states.get(obs.sample_id):
            self.states[obs.sample_id] = outcome.state
            self.touched[obs.sample_id] = event.position
        if outcome.status_change is not None:
            self._record_status_change(event, outcome)
        if outcome.content_changed:
            self._derive(
                event,
                SAMPLE_CONTENT_OBSERVED,
                f"content:{obs.sample_id}",
                {
                    "sample_id": obs.sample_id,
                    "region": outcome.state.region,
                    "platform_creator_id": outcome.state.platform_creator_id,
                    "status": outcome.state.status,
                    "content_count": outcome.state.content_count,
                    "observed_at": obs.observed_at.isoformat(),
                },
            )
        return outcome

    def see_content(self, sighting: ContentSighting) -> None:
        key = (sighting.sample_id, sighting.item.key)
        item = sighting.item
        row = {
            "sample_id": sighting.sample_id,
            "content_key": item.key,
            "content_type": item.content_type,
            "title": item.title,
            "posted_at": item.posted_at,
            "view_count": item.view_count,
            "like_count": item.like_count,
            "comment_count": item.comment_count,
            "order_count": item.order_count,
            "order_amount": item.order_amount,
            "first_seen_at": sighting.observed_at,
            "last_seen_at": sighting.observed_at,
        }
        earlier = self.contents.get(key)
        if earlier is not None:  # one statement cannot upsert a key twice: merge here
            newest, oldest = (row, earlier) if row["last_seen_at"] >= earlier["last_seen_at"] else (earlier, row)
            row = {k: newest[k] if newest[k] is not None else oldest[k] for k in row}
            row["first_seen_at"] = min(earlier["first_seen_at"], sighting.observed_at)
            row["last_seen_at"] = max(earlier["last_seen_at"], sighting.observed_at)
        self.contents[key] = row

    def _record_status_change(self, event: RecordedEvent, outcome: Outcome) -> None:
        change = outcome.status_change
        assert change is not None
        state = outcome.state
        seq = sum(1 for h in self.history if h["event_position"] == event.position)
        self.history.append(
            {
                "event_position": event.position,
                "sample_id": state.sample_id,
                "seq": seq,
                "from_status": change.from_status,
                "to_status": change.to_status,
                "observed_at": change.observed_at,
                "source": change.source,
                "regression": change.regression,
            }
        )
        self._derive(
            event,
            SAMPLE_STATUS_CHANGED,
            f"status:{state.sample_id}:{seq}",
            {
                "sample_id": state.sample_id,
                "region": state.region,
                "platform_product_id": state.platform_product_id,
                "platform_creator_id": state.platform_creator_id,
                "from_status": change.from_status,
                "to_status": change.to_status,
                "observed_at": change.observed_at.isoformat(),
                "source": change.source,
                "regression": change.regression,
                "first_sighting": change.first_sighting,
                "content_count": state.content_count,
            },
        )

    def _derive(self, cause: RecordedEvent, event_type: str, name: str, data: dict[str, Any]) -> None:
        self.derived.append(
            NewEvent(
                stream_id=f"sample-{data['sample_id']}",
                event_type=event_type,
                data=data,
                metadata={
                    "causation_id": str(cause.event_id),
                    "correlation_id": cause.metadata.get("correlation_id"),
                    "source": cause.metadata.get("source"),
                },
                event_id=derived_event_id(cause.event_id, name),
            )
        )

    async def write(self, conn: AsyncConnection) -> None:
        await store.upsert_samples(conn, [(self.states[sid], pos) for sid, pos in self.touched.items()])
        await store.upsert_contents(conn, list(self.contents.values()))
        await store.insert_history(conn, self.history)
        await store.insert_crawl_batches(conn, self.batches)
        await append_events(conn, self.derived)


def on_crawl_batch_recorded(fold: SampleFold, event: RecordedEvent, reading: BatchReading) -> None:
    new = changed = 0
    for obs in reading.observations:
        was_known = obs.sample_id in fold.states
        before = fold.states.get(obs.sample_id)
        outcome = fold.observe(event, obs)
        if not was_known:
            new += 1
        elif before is not None and before.fingerprint() != outcome.state.fingerprint():
            changed += 1
    for sighting in reading.contents:
        fold.see_content(sighting)
    fold.batches.append(
        {
            "message_id": event.metadata.get("message_id") or event.stream_id,
            "event_position": event.position,
            "source": reading.source,
            "received_at": received_at(event),
            "content_expanded": reading.content_expanded,
            "rows_total": reading.rows_total,
            "rows_rejected": len(reading.rejected),
            "rejections": json.dumps([{"row": r.index, "reason": r.reason} for r in reading.rejected]),
            "samples_new": new,
            "samples_changed": changed,
        }
    )


class SamplesProjection:
    name = "samples"
    event_types = (CRAWL_BATCH_RECORDED,)
    tables = (
        "projections.samples",
        "projections.sample_contents",
        "projections.sample_status_history",
        "projections.crawl_batches",
    )

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
        readings = [
            (e, read_crawl_batch(e.data, received_at(e))) for e in events if e.event_type == CRAWL_BATCH_RECORDED
        ]
        sample_ids = {obs.sample_id for _, r in readings for obs in r.observations}
        fold = SampleFold(await store.load_states(conn, sample_ids))
        for event, reading in readings:
            on_crawl_batch_recorded(fold, event, reading)
        await fold.write(conn)
