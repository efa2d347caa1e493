"""Late observations: fold a sample's status and content again in `observed_at` order. Pure, no I/O.

The fold applies each observation as it arrives (`sample_state.apply_observation`), which is exact while
observations arrive in `observed_at` order. One that arrives after a newer one (a collector reading an
old page, a delayed webhook, a redelivery) may belong in the middle of the sample's history: between
two sightings of `shipped` it may be a regression and a return, before a first sighting it becomes the
first sighting. Then the sample's status and content are folded again from every sighting, in time
order, and the result replaces the sample's status history: the same history, state and chatbot steps
as if every observation had arrived in time order (docs/domain.md, "Ordering").

Facts and seen times need no replay: each fact keeps the time it was observed (`merge_facts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from events.statuses import Status
from projections.sample_state import (
    TIE_ORDER,
    Observation,
    Outcome,
    SampleState,
    StatusChange,
    apply_content,
    apply_observation,
    apply_status,
    observe_facts,
)


@dataclass(frozen=True)
class Sighting:
    """What one observation said of its sample's status and content, and the event that carried it."""

    event_position: int
    observed_at: datetime
    source: str
    status: Status | None
    cancel_reason: str | None
    content_count: int | None

    @classmethod
    def of(cls, obs: Observation, event_position: int) -> Sighting:
        return cls(event_position, obs.observed_at, obs.source, obs.status, obs.cancel_reason, obs.content_count)

    @property
    def says_something(self) -> bool:
        """Only sightings of the status or the content can change the history or the chatbot."""
        return self.status is not None or self.content_count is not None


@dataclass(frozen=True)
class Step:
    """One moment of the sample's replayed history: a status change, a content change, or both (a
    status change is then decided first), with the sample's status and content right after it."""

    event_position: int
    observed_at: datetime
    status_change: StatusChange | None
    content_changed: bool
    status: Status | None
    content_count: int | None


@dataclass(frozen=True)
class Replayed:
    state: SampleState
    steps: tuple[Step, ...]

    def history(self) -> list[tuple[int, StatusChange]]:
        """The status changes in time order, each with the event whose sighting made it."""
        return [(s.event_position, s.status_change) for s in self.steps if s.status_change is not None]


def needs_replay(state: SampleState | None, obs: Observation) -> bool:
    """Whether folding `obs` on top of `state` could differ from folding it in time order.

    It could when the observation says something of the status or content and is older than the newest
    such sighting applied, or as old with a different status or count (at one instant the tie rule
    decides, and a replay applies it without leaving a momentary change in the history)."""
    if state is None or (obs.status is None and obs.content_count is None):
        return False
    newest = max((t for t in (state.status_observed_at, state.content_observed_at) if t is not None), default=None)
    if newest is None:
        return False
    if obs.observed_at < newest:
        return True
    if obs.status is not None and obs.observed_at == state.status_observed_at and obs.status != state.status:
        return True
    return (
        obs.content_count is not None
        and obs.observed_at == state.content_observed_at
        and obs.content_count != state.content_count
    )


def replay(state: SampleState, sightings: Iterable[Sighting]) -> Replayed:
    """The sample's status and content folded from its sightings in time order.

    `state` supplies identity, facts and seen times (already merged with the newest observation); its
    status and content are recomputed. At one instant only the status that wins the tie counts, and
    only the largest content count, so the result does not depend on the order sightings were recorded
    in (no momentary change that a later arrival at the same instant would undo)."""
    by_event = {s.event_position: s for s in sightings}  # a sighting recorded twice counts once
    ordered = sorted(by_event.values(), key=lambda s: (s.observed_at, s.event_position))
    winners: dict[datetime, int] = {}
    largest: dict[datetime, int] = {}
    for s in ordered:
        if s.status is not None:
            winners[s.observed_at] = max(winners.get(s.observed_at, -1), TIE_ORDER.index(s.status))
        if s.content_count is not None:
            largest[s.observed_at] = max(largest.get(s.observed_at, -1), s.content_count)
    current = state.evolve(
        status=None, status_changed_at=None, status_observed_at=None, status_source=None,
        cancel_reason=None, content_count=None, content_observed_at=None,
    )  # fmt: skip
    steps: list[Step] = []
    for s in ordered:
        wins = s.status is not None and TIE_ORDER.index(s.status) == winners[s.observed_at]
        obs = Observation(
            sample_id=state.sample_id, region=state.region, platform_product_id=state.platform_product_id,
            creator_key=state.creator_key, observed_at=s.observed_at, source=s.source, facts={},
            status=s.status if wins else None, cancel_reason=s.cancel_reason if wins else None,
            content_count=s.content_count if s.content_count == largest.get(s.observed_at) else None,
        )  # fmt: skip
        current, change, _ = apply_status(current, obs)
        current, content_changed = apply_content(current, obs)
        if change is not None or content_changed:
            steps.append(Step(s.event_position, s.observed_at, change, content_changed, current.status,
                              current.content_count))  # fmt: skip
    return Replayed(current, tuple(steps))


@dataclass(frozen=True)
class Observed:
    """One observation folded: `outcome` as `apply_observation` gives it; for a late observation that
    changed the sample's history, that whole history folded again (`outcome.status_change` is then
    None: `replayed` says it). A late observation that changed no moment of it has `replayed` None and
    `outcome.stale` True."""

    outcome: Outcome
    replayed: Replayed | None = None


class TimelineNeeded(LookupError):
    """A late observation about a sample whose sightings were not loaded: load them and fold again."""


def observe(
    state: SampleState | None,
    obs: Observation,
    event_position: int,
    timeline: Sequence[Sighting] | None,
    *,
    sightings_complete: bool = True,
) -> Observed:
    """Fold one observation, in arrival order while that is time order, else by replaying `timeline`
    (the sample's sightings so far). A sample whose sightings are not all on record (first seen before
    they were kept) folds a late observation as stale, as `apply_observation` does."""
    if state is None or not state.sightings_complete or not needs_replay(state, obs):
        return Observed(apply_observation(state, obs, sightings_complete=sightings_complete))
    if timeline is None:
        raise TimelineNeeded(obs.sample_id)
    merged = observe_facts(state, obs)
    replayed = replay(merged, [*timeline, Sighting.of(obs, event_position)])
    # Compared with the history without it, not by whether it is a step itself: at an instant it can
    # win the tie and so remove another sighting's step without making one.
    if replayed.steps == replay(merged, timeline).steps:
        return Observed(Outcome(replayed.state, False, None, True, False))
    return Observed(Outcome(replayed.state, False, None, False, False), replayed)
