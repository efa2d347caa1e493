"""The in-memory fold of one page of events for the samples read model, and its single write.

It writes its own tables and collects the events it derives; it never appends to the log itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from events import streams
from events.recorded import NewEvent, RecordedEvent, derived_event_id, trace_context
from events.sample_events import RevisedStep, SampleContentObserved, SampleHistoryRevised, SampleStatusChanged
from events.statuses import Status
from events.webhooks import SampleApplicationChange
from projections import samples_store as store
from projections.crawl_reading import ContentSighting
from projections.sample_inputs import webhook_observation
from projections.sample_replay import Observed, Replayed, Sighting, TimelineNeeded, observe
from projections.sample_state import Observation, Outcome, SampleState, StatusChange, apply_observation


@dataclass(frozen=True)
class WaitingWebhook:
    """A type-56 webhook whose sample is not known yet."""

    event_position: int
    change: SampleApplicationChange
    observed_at: datetime

    def joins(self, state: SampleState) -> bool:
        if self.change.application_id and self.change.application_id == state.application_id:
            return True
        return (
            self.change.platform_creator_id is not None
            and self.change.platform_product_id == state.platform_product_id
            and self.change.platform_creator_id == state.platform_creator_id
        )


@dataclass
class SampleFold:
    states: dict[str, SampleState]
    waiting: dict[int, WaitingWebhook] = field(default_factory=dict)
    # The sightings of the samples a late observation is about (loaded), and of the samples this page
    # introduced (complete from their start); a late observation about any other sample is `missing`,
    # and the page is folded again with its sightings loaded.
    timelines: dict[str, list[Sighting]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    sightings_after: int = 0  # samples introduced by an event at or before this position keep no sightings
    new_sightings: list[tuple[str, Sighting]] = field(default_factory=list)
    touched: dict[str, int] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # new rows, per sample
    rewritten: set[str] = field(default_factory=set)  # samples whose whole history `history` replaces
    changes_per_event: dict[int, int] = field(default_factory=dict)  # numbers status changes within an event
    revisions: dict[tuple[int, str], int] = field(default_factory=dict)  # numbers revisions of a sample per event
    contents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    stored_contents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # as loaded
    batches: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhook_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    waiting_added: set[int] = field(default_factory=set)
    waiting_done: set[int] = field(default_factory=set)
    derived: list[NewEvent] = field(default_factory=list)
    derived_metadata: dict[int, dict[str, Any]] = field(default_factory=dict)  # per cause position

    def observe(self, event: RecordedEvent, obs: Observation) -> Outcome:
        """Apply one observation, then any webhook that was waiting for this sample."""
        outcome = self._apply(event, obs, event.position)
        for webhook in sorted(self._waiting_for(outcome.state), key=lambda w: (w.observed_at, w.event_position)):
            change = webhook_observation(outcome.state, webhook.change, webhook.observed_at)
            late = self._apply(event, change, webhook.event_position)
            self.waiting_done.add(webhook.event_position)
            del self.waiting[webhook.event_position]
            self.set_webhook_disposition(webhook.event_position, "stale" if late.stale else "applied", obs.sample_id)
            outcome = late
        return outcome

    def find(self, change: SampleApplicationChange) -> SampleState | None:
        """The sample a type-56 webhook joins: by application id, else by (product, creator)."""
        for state in self.states.values():
            if change.application_id and state.application_id == change.application_id:
                return state
        for state in self.states.values():
            if (
                change.platform_creator_id
                and state.platform_product_id == change.platform_product_id
                and state.platform_creator_id == change.platform_creator_id
            ):
                return state
        return None

    def wait(self, webhook: WaitingWebhook) -> None:
        self.waiting[webhook.event_position] = webhook
        self.waiting_added.add(webhook.event_position)

    def set_webhook_disposition(self, position: int, disposition: str, sample_id: str | None) -> None:
        row = self.webhooks.get(position) or self.webhook_updates.setdefault(position, {"event_position": position})
        row.update(disposition=disposition, sample_id=sample_id)

    def see_content(self, sighting: ContentSighting) -> None:
        key = (sighting.sample_id, sighting.item.key)
        item = sighting.item
        row = {
            "sample_id": sighting.sample_id, "content_key": item.key, "content_type": item.content_type,
            "title": item.title, "posted_at": item.posted_at, "view_count": item.view_count,
            "like_count": item.like_count, "comment_count": item.comment_count,
            "order_count": item.order_count, "order_amount": item.order_amount,
            "first_seen_at": sighting.observed_at, "last_seen_at": sighting.observed_at,
        }  # fmt: skip
        earlier = self.contents.get(key) or self.stored_contents.get(key)
        self.contents[key] = row if earlier is None else merge_sightings(earlier, row)

    def _waiting_for(self, state: SampleState) -> list[WaitingWebhook]:
        return [w for w in self.waiting.values() if w.joins(state)]

    def _apply(self, event: RecordedEvent, obs: Observation, said_by: int) -> Outcome:
        """Fold one observation carried by the event at `said_by` (the webhook's own, for a waiting one)."""
        sid = obs.sample_id
        before = self.states.get(sid)
        try:
            observed = observe(before, obs, said_by, self.timelines.get(sid),
                               sightings_complete=event.position > self.sightings_after)  # fmt: skip
        except TimelineNeeded:
            self.missing.add(sid)  # provisional: the page is folded again with the sightings loaded
            observed = Observed(apply_observation(before, obs))
        outcome = observed.outcome
        if outcome.state != before:
            self.states[sid] = outcome.state
            self.touched[sid] = event.position
        self._keep_sighting(outcome.state, Sighting.of(obs, said_by), is_new=before is None)
        if observed.replayed is not None:
            self._record_revision(event, outcome.state, observed.replayed)
            return outcome
        if outcome.status_change is not None:
            self._record_status_change(event, outcome)  # carries a content change with it
        elif outcome.content_changed:
            state = outcome.state
            self._derive(event, f"content:{obs.sample_id}", SampleContentObserved(
                sample_id=obs.sample_id, region=state.region, platform_creator_id=state.platform_creator_id,
                status=state.status, content_count=state.content_count, observed_at=obs.observed_at,
            ))  # fmt: skip
        return outcome

    def _keep_sighting(self, state: SampleState, sighting: Sighting, *, is_new: bool) -> None:
        if not state.sightings_complete or not sighting.says_something:
            return
        self.new_sightings.append((state.sample_id, sighting))
        if is_new:
            self.timelines[state.sample_id] = []
        if state.sample_id in self.timelines:
            self.timelines[state.sample_id].append(sighting)

    def _history_row(self, sample_id: str, event_position: int, change: StatusChange, seq: int = 0) -> int:
        """Add a row as `seq` of its event, or the next free number when a replayed row holds it."""
        rows = self.history.setdefault(sample_id, [])
        taken = {row["seq"] for row in rows if row["event_position"] == event_position}
        while seq in taken:
            seq += 1
        rows.append({
            "event_position": event_position, "sample_id": sample_id, "seq": seq,
            "from_status": change.from_status, "to_status": change.to_status,
            "observed_at": change.observed_at, "source": change.source, "regression": change.regression,
        })  # fmt: skip
        return seq

    def _record_revision(self, event: RecordedEvent, state: SampleState, replayed: Replayed) -> None:
        """A late observation: the sample's history is replaced, and the chatbot told the whole of it."""
        sid = state.sample_id
        self.rewritten.add(sid)
        self.history[sid] = []
        for position, change in replayed.history():
            self._history_row(sid, position, change)
        n = self.revisions.get((event.position, sid), 0)
        self.revisions[(event.position, sid)] = n + 1
        steps = tuple(RevisedStep(
            observed_at=step.observed_at, status=step.status, content_count=step.content_count,
            content_changed=step.content_changed,
            **(_change_fields(step.status_change) if step.status_change is not None else {}),
        ) for step in replayed.steps)  # fmt: skip
        self._derive(event, f"revised:{sid}:{n}", SampleHistoryRevised(
            sample_id=sid, region=state.region, platform_product_id=state.platform_product_id,
            platform_creator_id=state.platform_creator_id, steps=steps,
        ))  # fmt: skip

    def _record_status_change(self, event: RecordedEvent, outcome: Outcome) -> None:
        change = outcome.status_change
        assert change is not None
        state = outcome.state
        # Numbered within the event across its samples, as rows have always been (a rebuild of rows
        # written before replays existed gives the same keys).
        seq = self._history_row(state.sample_id, event.position, change, self.changes_per_event.get(event.position, 0))
        self.changes_per_event[event.position] = seq + 1
        self._derive(event, f"status:{state.sample_id}:{seq}", SampleStatusChanged(
            sample_id=state.sample_id, region=state.region, platform_product_id=state.platform_product_id,
            platform_creator_id=state.platform_creator_id, from_status=change.from_status,
            to_status=change.to_status, observed_at=change.observed_at, source=change.source,
            regression=change.regression, first_sighting=change.first_sighting, content_count=state.content_count,
            content_changed=outcome.content_changed,
        ))  # fmt: skip

    def _derive(
        self, cause: RecordedEvent, name: str, event: SampleStatusChanged | SampleContentObserved | SampleHistoryRevised
    ) -> None:
        metadata = self.derived_metadata.get(cause.position)
        if metadata is None:  # one per cause, shared by what it derives (a crawl batch derives dozens); never mutated
            metadata = self.derived_metadata[cause.position] = {
                "causation_id": str(cause.event_id),
                "correlation_id": cause.metadata.get("correlation_id"),
                "source": cause.metadata.get("source"),
                **trace_context(cause.metadata),  # absent, not null, when the cause has none
            }
        self.derived.append(NewEvent.of(event, stream_id=streams.sample(event.sample_id), metadata=metadata,
                                        event_id=derived_event_id(cause.event_id, name)))  # fmt: skip

    async def write(self, conn: AsyncConnection) -> None:
        """Every table once; the derived events are the caller's to append (`self.derived`)."""
        await store.upsert_samples(conn, [(self.states[sid], pos) for sid, pos in self.touched.items()])
        await store.upsert_contents(conn, list(self.contents.values()))
        await store.insert_sightings(conn, self.new_sightings)
        await store.delete_history(conn, sorted(self.rewritten))
        await store.insert_history(conn, [row for rows in self.history.values() for row in rows])
        await store.insert_crawl_batches(conn, self.batches)
        await store.insert_webhooks(conn, list(self.webhooks.values()))
        await store.update_webhooks(conn, list(self.webhook_updates.values()))
        added = [self.waiting[p] for p in self.waiting_added if p in self.waiting]
        await store.insert_waiting(conn, [_waiting_row(w) for w in added])
        await store.delete_waiting(conn, sorted(self.waiting_done - self.waiting_added))


def _change_fields(change: StatusChange) -> dict[str, Any]:
    return {"from_status": change.from_status, "to_status": change.to_status, "source": change.source,
            "regression": change.regression, "first_sighting": change.first_sighting}  # fmt: skip


def merge_sightings(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """One content row from two sightings: the most recently seen known value wins and an unknown
    (None) never erases a known one; seen from the first sighting to the last."""
    newest, oldest = (later, earlier) if later["last_seen_at"] >= earlier["last_seen_at"] else (earlier, later)
    merged = {k: newest[k] if newest[k] is not None else oldest[k] for k in later}
    merged["first_seen_at"] = min(earlier["first_seen_at"], later["first_seen_at"])
    merged["last_seen_at"] = max(earlier["last_seen_at"], later["last_seen_at"])
    return merged


def _waiting_row(webhook: WaitingWebhook) -> dict[str, Any]:
    change = webhook.change
    return {
        "event_position": webhook.event_position, "application_id": change.application_id,
        "platform_product_id": change.platform_product_id, "platform_creator_id": change.platform_creator_id,
        "status": change.status.value, "cancel_reason": change.cancel_reason, "observed_at": webhook.observed_at,
    }  # fmt: skip


def waiting_from_row(row: dict[str, Any]) -> WaitingWebhook:
    change = SampleApplicationChange(
        application_id=row["application_id"], platform_product_id=row["platform_product_id"],
        platform_creator_id=row["platform_creator_id"], status=Status(row["status"]),
        cancel_reason=row["cancel_reason"], raw_status=row["cancel_reason"] or row["status"],
    )  # fmt: skip
    return WaitingWebhook(row["event_position"], change, row["observed_at"])
