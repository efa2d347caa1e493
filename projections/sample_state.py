"""Pure decisions about one sample: given its state and an observation, what is its new state and what
changed. No I/O; times come in with the observation.

Rules (docs/domain.md): an observation older than the newest status already applied does not move the
status (stale); a newer one that moves backwards is applied and flagged as a regression; a missing
value never overwrites a known one; content is changed only by a look at the content drawer.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from events.statuses import Status, is_regression

# Descriptive facts an observation may carry; newer observations overwrite, older ones only fill gaps.
FACT_FIELDS = (
    "platform_creator_id",
    "platform_creator_username",
    "platform_creator_display_name",
    "product_name",
    "product_sku",
    "platform_campaign_id",
    "platform_campaign_name",
    "stock",
    "available_sample_count",
    "post_rate",
    "is_showcase",
    "request_time_remaining",
    "application_id",
)


@dataclass(frozen=True)
class SampleState:
    sample_id: str
    region: str
    platform_product_id: str
    creator_key: str
    first_seen_at: datetime
    last_seen_at: datetime
    platform_creator_id: str | None = None
    platform_creator_username: str | None = None
    platform_creator_display_name: str | None = None
    product_name: str | None = None
    product_sku: str | None = None
    platform_campaign_id: str | None = None
    platform_campaign_name: str | None = None
    stock: int | None = None
    available_sample_count: int | None = None
    post_rate: Decimal | None = None
    is_showcase: bool | None = None
    request_time_remaining: str | None = None
    application_id: str | None = None
    status: Status | None = None
    status_changed_at: datetime | None = None
    status_observed_at: datetime | None = None
    status_source: str | None = None
    cancel_reason: str | None = None
    content_count: int | None = None
    content_observed_at: datetime | None = None
    # When each known fact was observed, so that a fact is taken from the newest observation that knows
    # it whatever the arrival order; a fact missing here (rows older than migration 0008) counts as
    # observed at last_seen_at.
    fact_observed_at: dict[str, datetime] = field(default_factory=dict)
    # Every status and content sighting of this sample is on record (projections/sample_replay.py), so a
    # late observation can be folded where it belongs in time.
    sightings_complete: bool = True

    def fingerprint(self) -> str:
        """Hash of every projected fact except when the sample was seen: equal means nothing changed."""
        known: str | None = self.__dict__.get(_FINGERPRINT)
        if known is None:  # computed once per state: a page compares and writes it
            values = list(_fingerprinted_values(self))
            for i in _FINGERPRINTED_MOMENTS:
                if isinstance(values[i], datetime):
                    values[i] = moment_text(values[i])
            text = _FINGERPRINT_TEXT.format(*values)
            known = self.__dict__[_FINGERPRINT] = hashlib.sha256(text.encode()).hexdigest()[:32]
        return known

    def evolve(self, **changes: Any) -> SampleState:
        """`dataclasses.replace`, without its per-field introspection and `__init__`: the fold makes
        three new states per observation, and `replace` was a fifth of its time."""
        assert changes.keys() <= _FIELD_NAMES, changes.keys() - _FIELD_NAMES
        moved = object.__new__(SampleState)
        values = moved.__dict__
        values.update(self.__dict__)
        values.pop(_FINGERPRINT, None)
        values.update(changes)
        return moved


# Bookkeeping, not facts: when the sample was seen and when each fact was, and whether its sightings are kept.
_NOT_FINGERPRINTED = ("first_seen_at", "last_seen_at", "fact_observed_at", "sightings_complete")
_FINGERPRINTED = tuple(f.name for f in fields(SampleState) if f.name not in _NOT_FINGERPRINTED)
# "name=str(value)|name=str(value)|…" in field order, the text stored fingerprints have always hashed;
# one format call instead of a formatted string per field (a tenth of the samples fold's time).
_FINGERPRINT_TEXT = "|".join(f"{name}={{!s}}" for name in _FINGERPRINTED)
_fingerprinted_values = operator.attrgetter(*_FINGERPRINTED)
_FINGERPRINTED_MOMENTS = tuple(i for i, f in enumerate(_FINGERPRINTED) if f.endswith("_at"))
_MOMENT_TEXTS: dict[tuple[type, datetime, object, int], str] = {}


def moment_text(moment: datetime) -> str:
    """`str(moment)`, made once per moment: a time's text costs a microsecond or two, and the states of a
    page share a few moments (every row of a crawl page carries its extractedTime)."""
    # The same instant in another zone, or as a subclass with its own str(), is written otherwise.
    key = (type(moment), moment, moment.tzinfo, moment.fold)
    text = _MOMENT_TEXTS.get(key)
    if text is None:
        if len(_MOMENT_TEXTS) >= 10_000:  # a bound, not a cache policy: the next page refills what it needs
            _MOMENT_TEXTS.clear()
        text = _MOMENT_TEXTS[key] = str(moment)
    return text


_FIELD_NAMES = frozenset(f.name for f in fields(SampleState))
_FINGERPRINT = "_fingerprint"  # where a state keeps its fingerprint once computed (not a field)


@dataclass(frozen=True)
class Observation:
    """What one source saw of one sample at one time."""

    sample_id: str
    region: str
    platform_product_id: str
    creator_key: str
    observed_at: datetime
    source: str
    facts: dict[str, Any]
    status: Status | None = None
    cancel_reason: str | None = None
    content_count: int | None = None  # None: content was not looked at


@dataclass(frozen=True)
class StatusChange:
    from_status: Status | None
    to_status: Status
    observed_at: datetime
    source: str
    regression: bool

    @property
    def first_sighting(self) -> bool:
        return self.from_status is None


@dataclass(frozen=True)
class Outcome:
    state: SampleState
    is_new: bool
    status_change: StatusChange | None
    stale: bool
    content_changed: bool


def new_sample(obs: Observation, *, sightings_complete: bool = True) -> SampleState:
    return SampleState(
        sample_id=obs.sample_id,
        region=obs.region,
        platform_product_id=obs.platform_product_id,
        creator_key=obs.creator_key,
        first_seen_at=obs.observed_at,
        last_seen_at=obs.observed_at,
        sightings_complete=sightings_complete,
    )


def apply_observation(state: SampleState | None, obs: Observation, *, sightings_complete: bool = True) -> Outcome:
    """Fold one observation into a sample's state, as the newest of its kind or as stale.

    Exact when observations arrive in `observed_at` order; `sample_replay.needs_replay` says when one
    does not, and `sample_replay.replay` folds it where it belongs."""
    is_new = state is None
    current = new_sample(obs, sightings_complete=sightings_complete) if state is None else state
    updated = observe_facts(current, obs)
    updated, change, stale = apply_status(updated, obs)
    updated, content_changed = apply_content(updated, obs)
    return Outcome(updated, is_new, change, stale, content_changed)


def observe_facts(state: SampleState, obs: Observation) -> SampleState:
    """The seen times and the facts; these do not depend on the arrival order."""
    return state.evolve(
        first_seen_at=min(state.first_seen_at, obs.observed_at),
        last_seen_at=max(state.last_seen_at, obs.observed_at),
        **merge_facts(state, obs.facts, obs.observed_at),
    )


def merge_facts(state: SampleState, facts: dict[str, Any], observed_at: datetime) -> dict[str, Any]:
    """Known values only, each from the newest observation that knows it: a newer value replaces, an
    older one fills what is still unknown, and a missing value never erases a known one.

    `fact_observed_at` names only the known facts observed at another time than `last_seen_at`, so a
    collector re-reading every fact keeps it empty (nothing to store), and the same observations give
    the same map whatever their arrival order.

    A sample first seen before migration 0008 (`sightings_complete` false) keeps the rule it was folded
    with until then, so that a rebuild gives its live rows: facts from an observation at least as new as
    `last_seen_at` replace, older ones only fill what is unknown."""
    if not state.sightings_complete:
        return _merge_facts_as_before_0008(state, facts, overwrite=observed_at >= state.last_seen_at)
    merged: dict[str, Any] = {}
    times = state.fact_observed_at
    changed: dict[str, datetime] | None = None
    for name, value in facts.items():
        if value is None or name not in FACT_FIELDS:
            continue
        if getattr(state, name) is not None and observed_at < times.get(name, state.last_seen_at):
            continue
        merged[name] = value
        changed = dict(times) if changed is None else changed
        changed[name] = observed_at
    last_seen_at = max(state.last_seen_at, observed_at)
    if last_seen_at != state.last_seen_at:  # known facts this observation did not carry keep their time
        changed = dict(times) if changed is None else changed
        for name in FACT_FIELDS:
            if name not in changed and getattr(state, name) is not None:
                changed[name] = state.last_seen_at
    if changed is not None:
        kept = {name: moment for name, moment in changed.items() if moment != last_seen_at}
        if kept != times:
            merged["fact_observed_at"] = kept
    return merged


def _merge_facts_as_before_0008(state: SampleState, facts: dict[str, Any], *, overwrite: bool) -> dict[str, Any]:
    return {
        name: value
        for name, value in facts.items()
        if value is not None and name in FACT_FIELDS and (overwrite or getattr(state, name) is None)
    }


# At the same observed_at the later status in this order wins, whatever order the two arrive in, so a
# tie (two tabs crawled in the same second) cannot flip with redeliveries or replays.
TIE_ORDER: tuple[Status, ...] = tuple(Status)


def is_stale(state: SampleState, obs: Observation) -> bool:
    """Older than the newest status observation applied, or its equal that loses the tie."""
    if obs.status is None or state.status_observed_at is None:
        return False
    if obs.observed_at != state.status_observed_at:
        return obs.observed_at < state.status_observed_at
    return state.status is not None and TIE_ORDER.index(obs.status) < TIE_ORDER.index(state.status)


def apply_status(state: SampleState, obs: Observation) -> tuple[SampleState, StatusChange | None, bool]:
    if obs.status is None:
        return state, None, False
    if is_stale(state, obs):
        return state, None, True
    if obs.status == state.status:
        if obs.status == Status.CANCELED and obs.cancel_reason is not None:
            # The newest known reason wins; a reason that arrives late is not lost to its status.
            return state.evolve(status_observed_at=obs.observed_at, cancel_reason=obs.cancel_reason), None, False
        return state.evolve(status_observed_at=obs.observed_at), None, False
    change = StatusChange(
        from_status=state.status,
        to_status=obs.status,
        observed_at=obs.observed_at,
        source=obs.source,
        regression=is_regression(state.status, obs.status),
    )
    moved = state.evolve(
        status_observed_at=obs.observed_at,
        status=obs.status,
        status_changed_at=obs.observed_at,
        status_source=obs.source,
        cancel_reason=obs.cancel_reason if obs.status == Status.CANCELED else None,
    )
    return moved, change, False


def apply_content(state: SampleState, obs: Observation) -> tuple[SampleState, bool]:
    if obs.content_count is None:  # not looked at (events.crawl.content_count_seen): keep what is known
        return state, False
    if state.content_observed_at is not None and obs.observed_at < state.content_observed_at:
        return state, False
    if obs.observed_at == state.content_observed_at and obs.content_count <= (state.content_count or 0):
        return state, False  # a tie: the larger count wins, whatever order the two arrive in
    updated = state.evolve(content_count=obs.content_count, content_observed_at=obs.observed_at)
    return updated, obs.content_count != state.content_count
