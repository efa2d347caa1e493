"""Property tests: one sample's observations in any arrival order, duplicated, split into any pages
(docs/domain.md "Ordering, stale observations and regressions", "Content", "Chatbot").

The property: any interleaving and duplication of one sample's observations gives what the rules give
for the same observations applied once in `observed_at` order: the state (status, its times and source,
cancel reason, facts, content), the status history and the chatbot schedule. A late observation is folded
where it belongs by replaying the sample's sightings (`projections/sample_replay.py`, decision 0006).

Also: duplicates add nothing, page boundaries change nothing (same log, same rows, same derived ids), and
at one instant the tie rules decide, not the arrival order (but for what an instant cannot order: which of
two facts or reasons seen at it is kept, and which source is named for a status two saw at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from events.identity import sample_id
from events.recorded import NewEvent, RecordedEvent
from events.sample_events import StatusReported
from events.statuses import Status, is_regression
from projections.chatbot import ChatbotFold
from projections.chatbot import fold_events as chatbot_fold_events
from projections.chatbot_rules import ChatbotPolicy, Schedule, ScheduleState
from projections.sample_fold import SampleFold, WaitingWebhook, _waiting_row, waiting_from_row
from projections.sample_replay import Sighting, observe
from projections.sample_state import (
    FACT_FIELDS,
    TIE_ORDER,
    Observation,
    Outcome,
    SampleState,
    StatusChange,
)
from projections.samples import fold_events, read_events
from tests.unit.events_in_memory import crawl, crawl_row, inbound, recorded, type_56

PRODUCT, CREATOR = "1729700000000000011", "7491112223334445556"
SID = sample_id("MX", PRODUCT, CREATOR)
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
POLICY = ChatbotPolicy(regions=frozenset({"MX"}))

# Fields that depend only on the newest observation of their kind, hence on no arrival order.
CONVERGING = ("status", "status_observed_at", "content_count", "content_observed_at", "first_seen_at", "last_seen_at")

FAST = settings(derandomize=True, database=None, max_examples=150, deadline=None)
PAGES = settings(derandomize=True, database=None, max_examples=100, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def first_occurrences(order: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(order))


# --- One sample's observations, folded with `apply_observation` --------------------------------------


@dataclass(frozen=True)
class Seen:
    """One observation of the sample."""

    minute: int
    status: Status | None
    cancel_reason: str | None = None
    content_count: int | None = None  # None: content not looked at
    source: str = "portal_tiktok_sample_crawler"
    product_name: str | None = None

    def observation(self) -> Observation:
        return Observation(
            sample_id=SID, region="MX", platform_product_id=PRODUCT, creator_key=CREATOR,
            observed_at=at(self.minute), source=self.source,
            facts={"platform_creator_id": CREATOR, "product_name": self.product_name},
            status=self.status, cancel_reason=self.cancel_reason, content_count=self.content_count,
        )  # fmt: skip


@dataclass(frozen=True)
class Arrival:
    """Distinct observations and the order they arrive in: indices into `seen`, each 1-3 times."""

    seen: tuple[Seen, ...]
    order: tuple[int, ...]

    def arrived(self) -> list[Seen]:
        return [self.seen[i] for i in self.order]

    def in_time_order(self) -> list[Seen]:
        return sorted(self.seen, key=lambda s: s.minute)


@st.composite
def seen_at(draw: st.DrawFn, minute: int) -> Seen:
    status = draw(st.sampled_from((None, *Status)))
    reason = draw(st.sampled_from((None, "REJECT_CANCELLED", "OPS_FAILED"))) if status is Status.CANCELED else None
    return Seen(
        minute=minute,
        status=status,
        cancel_reason=reason,
        content_count=draw(st.sampled_from((None, 0, 1, 2))),
        source=draw(st.sampled_from(("portal_tiktok_sample_crawler", "seller_monitor", "webhook"))),
        product_name=draw(st.sampled_from((None, "Crema 50ml", "Termo 1L"))),
    )


@st.composite
def arrivals(draw: st.DrawFn, *, distinct_times: bool = True, last_minute: int = 60) -> Arrival:
    minutes = draw(st.lists(st.integers(0, last_minute), min_size=1, max_size=6, unique=distinct_times))
    seen = tuple(draw(seen_at(m)) for m in minutes)
    copies = [i for i in range(len(seen)) for _ in range(draw(st.integers(1, 3)))]
    return Arrival(seen, tuple(draw(st.permutations(copies))))


@dataclass
class Folded:
    """One sample's observations folded as the samples projection folds them, late ones replayed."""

    state: SampleState
    outcomes: list[Outcome]
    history: list[StatusChange]  # as projections.sample_status_history holds it at the end
    replays: int = 0


def fold(seen: Iterable[Seen]) -> Folded:
    state: SampleState | None = None
    timeline: list[Sighting] = []
    outcomes: list[Outcome] = []
    changes: list[StatusChange] = []
    replays = 0
    for position, s in enumerate(seen, start=1):
        obs = s.observation()
        observed = observe(state, obs, position, timeline)
        outcomes.append(observed.outcome)
        if observed.replayed is not None:
            changes = [change for _, change in observed.replayed.history()]
            replays += 1
        elif observed.outcome.status_change is not None:
            changes.append(observed.outcome.status_change)
        if Sighting.of(obs, position).says_something:
            timeline.append(Sighting.of(obs, position))
        state = observed.outcome.state
    assert state is not None
    return Folded(state, outcomes, changes, replays)


def view(state: SampleState, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(state, name) for name in names}


@FAST
@given(arrivals())
def test_the_newest_observation_decides_whatever_the_arrival_order(arrival: Arrival) -> None:
    reference = fold(arrival.in_time_order()).state
    state = fold(arrival.arrived()).state
    assert view(state, CONVERGING) == view(reference, CONVERGING)
    with_status = [s for s in arrival.seen if s.status is not None]
    if with_status:
        assert state.status == max(with_status, key=lambda s: s.minute).status


@FAST
@given(arrivals())
@example(Arrival((Seen(0, Status.READY_TO_SHIP), Seen(1, Status.SHIPPED), Seen(2, Status.SHIPPED)), (2, 0, 1)))
@example(Arrival((Seen(0, None, product_name="Crema 50ml"), Seen(1, None, product_name="Termo 1L"), Seen(2, None)),
                 (2, 0, 1)))  # fmt: skip
@example(Arrival((Seen(0, Status.SHIPPED), Seen(1, Status.SHIPPED)), (1, 0)))
def test_in_any_arrival_order_with_duplicates_state_and_history_are_the_reference(arrival: Arrival) -> None:
    """The issue's property: any interleaving and duplication of one sample's observations gives the
    status, content count, facts, history and every other column that the same observations give
    applied once in observed_at order (distinct times)."""
    folded = fold(arrival.arrived())
    reference = fold(arrival.in_time_order())
    assert folded.state == reference.state
    assert folded.history == reference.history


@FAST
@given(arrivals())
def test_a_replay_happens_only_for_an_observation_older_than_one_applied(arrival: Arrival) -> None:
    """In time order (a rebuild's order for most samples) nothing is replayed; a stale flag means the
    observation changed nothing in the replayed history."""
    assert fold(arrival.in_time_order()).replays == 0
    folded = fold(arrival.arrived())
    newest = -1
    late = 0
    for s in arrival.arrived():
        says = s.status is not None or s.content_count is not None
        late += says and s.minute < newest
        newest = max(newest, s.minute) if says else newest
    assert folded.replays <= late


@FAST
@given(arrivals())
def test_duplicates_add_nothing(arrival: Arrival) -> None:
    """A message seen again, at any later point, changes no state and records no status change."""
    folded = fold(arrival.arrived())
    once = fold(arrival.seen[i] for i in first_occurrences(arrival.order))
    assert folded.state == once.state
    assert folded.history == once.history


@FAST
@given(arrivals())
def test_the_history_is_a_chain_in_time_order(arrival: Arrival) -> None:
    """Each change starts where the previous ended, times strictly increase, regressions are flagged by
    the lifecycle rule, and the last change is the current status."""
    folded = fold(arrival.arrived())
    changes = folded.history
    assert [c.observed_at for c in changes] == sorted({c.observed_at for c in changes})
    for before, after in zip([None, *changes], changes, strict=False):
        assert after.from_status == (before.to_status if before else None)
        assert after.from_status != after.to_status
        assert after.regression == is_regression(after.from_status, after.to_status)
    assert (changes[-1].to_status if changes else None) == folded.state.status
    seen = {(at(s.minute), s.status, s.source) for s in arrival.seen}
    assert all((c.observed_at, c.to_status, c.source) in seen for c in changes)


@FAST
@given(arrivals(distinct_times=False, last_minute=2))
def test_at_equal_times_the_tie_is_decided_the_same_whatever_the_arrival_order(arrival: Arrival) -> None:
    """At equal times the status later in the lifecycle order (canceled last) wins, and the larger
    content count: the order of arrival decides nothing."""
    state = fold(arrival.arrived()).state
    reference = fold(arrival.in_time_order()).state
    with_status = [s for s in arrival.seen if s.status is not None]
    if with_status:
        newest = max(s.minute for s in with_status)
        assert state.status_observed_at == at(newest)
        tied = [s.status for s in with_status if s.minute == newest and s.status is not None]
        assert state.status == max(tied, key=TIE_ORDER.index)
        assert state.status == reference.status
    looks = [s for s in arrival.seen if s.content_count is not None]
    if looks:
        newest = max(s.minute for s in looks)
        assert state.content_observed_at == at(newest)
        assert state.content_count == max(
            s.content_count for s in looks if s.minute == newest and s.content_count is not None
        )
        assert state.content_count == reference.content_count


@FAST
@given(arrivals())
@example(Arrival((Seen(0, Status.CANCELED), Seen(1, Status.CANCELED, "REJECT_CANCELLED")), (1, 0)))
def test_the_cancel_reason_is_independent_of_the_arrival_order(arrival: Arrival) -> None:
    assert fold(arrival.arrived()).state.cancel_reason == fold(arrival.in_time_order()).state.cancel_reason


@FAST
@given(arrivals(distinct_times=False, last_minute=2))
@example(Arrival((Seen(0, Status.TO_REVIEW), Seen(0, Status.READY_TO_SHIP)), (0, 1, 0)))
@example(Arrival((Seen(0, Status.READY_TO_SHIP), Seen(0, Status.TO_REVIEW)), (0, 1)))
# A late sighting that wins a tie removes another sighting's step without being a step itself.
@example(Arrival((Seen(0, Status.SHIPPED), Seen(1, Status.READY_TO_SHIP), Seen(1, Status.SHIPPED)), (0, 1, 2)))
@example(Arrival((Seen(0, Status.COMPLETED, content_count=0), Seen(0, Status.COMPLETED, content_count=3)), (0, 1)))
def test_at_equal_times_the_history_does_not_depend_on_the_arrival_order(arrival: Arrival) -> None:
    """Status, content and history. What an instant cannot order: which of two facts or cancel reasons
    seen at it is kept (the later arrival's), and which of two sources seeing one status is named."""
    folded = fold(arrival.arrived())
    unordered = (*FACT_FIELDS, "fact_observed_at", "status_source", "cancel_reason")
    ordered = [f.name for f in fields(SampleState) if f.name not in unordered]
    for other in (fold(arrival.seen[i] for i in first_occurrences(arrival.order)), fold(arrival.in_time_order())):
        assert view(folded.state, ordered) == view(other.state, ordered)
        assert moves(folded.history) == moves(other.history)


def moves(history: Sequence[StatusChange]) -> list[tuple[Status | None, Status, datetime, bool]]:
    return [(c.from_status, c.to_status, c.observed_at, c.regression) for c in history]


# --- Pages of recorded events through `SampleFold`, then `ChatbotFold` -----------------------------------

Kind = Literal["crawl", "report", "webhook"]
# How each source spells the statuses ("" : a crawl row without a status).
SPELLINGS: dict[Kind, tuple[str, ...]] = {
    "crawl": ("", "To review", "Ready to ship", "Shipped", "Content pending", "Completed", "Canceled"),
    "report": ("To review", "ready_to_ship", "3", "in progress", "Completed", "cancelled", "6"),
    "webhook": ("PENDING", "AWAITING_SHIPMENT", "SHIPPED", "CONTENT_PENDING", "COMPLETED", "REJECT_CANCELLED",
                "OPS_FAILED"),
}  # fmt: skip
# ready_to_ship, then the statuses whose entry schedules a message: drawn more often.
SCHEDULING: dict[Kind, tuple[str, ...]] = {
    "crawl": SPELLINGS["crawl"][2:6], "report": SPELLINGS["report"][1:5], "webhook": SPELLINGS["webhook"][1:5],
}  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One inbound message about the sample: a crawl page, a status report or a type-56 webhook."""

    kind: Kind
    minute: int
    status: str
    expanded: bool = False  # crawl: the content drawer was opened
    posts: int = 0  # crawl: content rows shown
    product_name: str | None = None

    def recorded(self, position: int) -> RecordedEvent:
        when = at(self.minute)
        if self.kind == "webhook":
            return type_56(position, self.status, when)
        if self.kind == "report":
            body = {"region": "mx", "platformProductId": PRODUCT, "platformCreatorId": CREATOR, "status": self.status,
                    "observedAt": when.isoformat(), "source": "seller_monitor"}  # fmt: skip
            return recorded(inbound(StatusReported, body), position)
        extracted = when.strftime("%Y-%m-%d %H:%M:%S")
        facts = {"productName": self.product_name} if self.product_name else {}
        posts = [{"type": "video", "promotionName": f"Post {n}", "promotionTime": "2026-04-30 18:00",
                  "promotionView": str(100 * self.minute + n)} for n in range(self.posts)]  # fmt: skip
        rows = [crawl_row(self.status, extracted, **facts, **post) for post in posts or [{}]]
        return crawl(position, *rows, expanded=self.expanded)


@dataclass(frozen=True)
class Log:
    """Distinct messages, their arrival order (indices, each 1-3 times) and where pages end."""

    messages: tuple[Message, ...]
    order: tuple[int, ...]
    cuts: frozenset[int] = frozenset()  # a page ends before these arrival indices
    chatbot_cuts: frozenset[int] = frozenset()  # and the chatbot's pages before these derived events

    def arrived(self) -> list[Message]:
        return [self.messages[i] for i in self.order]

    def in_time_order(self) -> list[Message]:
        return sorted(self.messages, key=lambda m: m.minute)


@st.composite
def message_at(draw: st.DrawFn, minute: int, *, webhook: bool) -> Message:
    kind: Kind = draw(st.sampled_from(("crawl", "report", "webhook") if webhook else ("crawl", "report")))
    # Lean on the statuses that schedule messages, so that the chatbot properties have something to check.
    status = draw(st.sampled_from(SPELLINGS[kind]) | st.sampled_from(SCHEDULING[kind]))
    if kind != "crawl":
        return Message(kind, minute, status)
    expanded = draw(st.booleans())
    return Message(kind, minute, status, expanded, draw(st.integers(0, 2)), draw(st.sampled_from((None, "Crema"))))


@st.composite
def logs(draw: st.DrawFn) -> Log:
    minutes = draw(st.lists(st.integers(0, 60), min_size=1, max_size=6, unique=True))
    # A webhook never creates a sample: the first message drawn introduces it, whenever it arrives.
    messages = tuple(draw(message_at(m, webhook=i > 0)) for i, m in enumerate(minutes))
    copies = [i for i in range(len(messages)) for _ in range(draw(st.integers(1, 3)))]
    order = draw(st.permutations(copies) | mostly_in_time_order(copies, [m.minute for m in messages]))
    cuts = draw(st.frozensets(st.integers(1, max(1, len(order) - 1))))
    return Log(messages, tuple(order), cuts, draw(st.frozensets(st.integers(1, 20))))


@st.composite
def mostly_in_time_order(draw: st.DrawFn, copies: list[int], minutes: list[int]) -> list[int]:
    """Messages in time order but for a few that arrive late: a random permutation mostly leaves only the
    newest message fresh, and this is where schedules are made, then cancelled."""
    order = sorted(copies, key=lambda i: minutes[i])
    for _ in range(draw(st.integers(0, 2))):
        late = order.pop(draw(st.integers(0, len(order) - 1)))
        order.insert(draw(st.integers(0, len(order))), late)
    return order


@dataclass
class Run:
    states: dict[str, SampleState]
    history: list[dict[str, Any]]
    derived: list[NewEvent]
    contents: dict[tuple[str, str], dict[str, Any]]
    dispositions: dict[int, str]
    schedules: dict[str, tuple[ScheduleState, int, datetime | None]]

    @property
    def state(self) -> SampleState:
        return self.states[SID]

    def moves(self) -> list[tuple[Status | None, Status, datetime, str, bool]]:
        in_time = sorted(self.history, key=lambda h: h["observed_at"])
        return [(h["from_status"], h["to_status"], h["observed_at"], h["source"], h["regression"]) for h in in_time]


def pages(items: Sequence[Any], cuts: Iterable[int]) -> list[Sequence[Any]]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(items)), len(items)]
    return [items[a:b] for a, b in pairwise(bounds)]


def reloaded(waiting: WaitingWebhook) -> WaitingWebhook:
    """A waiting webhook as the next page loads it from `projections.pending_webhooks`."""
    return waiting_from_row(_waiting_row(waiting))


def run(messages: Sequence[Message], cuts: Iterable[int] = (), chatbot_cuts: Iterable[int] = ()) -> Run:
    """Record the messages in this order, fold them a page at a time, then fold what they derive into the
    chatbot a page at a time; each page starts from what the previous one left in the tables."""
    events = [m.recorded(position) for position, m in enumerate(messages, start=1)]
    result = Run({}, [], [], {}, {}, {})
    waiting: dict[int, WaitingWebhook] = {}
    sightings: dict[str, list[Sighting]] = {}  # projections.sample_sightings
    for page in pages(events, cuts):
        timelines_of: set[str] = set()
        while True:  # as SamplesProjection.apply: fold again with the sightings a late observation needs
            fold = SampleFold(states=dict(result.states), waiting=dict(waiting), stored_contents=dict(result.contents),
                              timelines={sid: list(sightings.get(sid, [])) for sid in timelines_of})  # fmt: skip
            fold_events(fold, read_events(page))
            if not fold.missing:
                break
            timelines_of |= fold.missing
        result.states = fold.states
        waiting = {position: reloaded(w) for position, w in fold.waiting.items()}
        result.contents.update(fold.contents)
        for sid, sighting in fold.new_sightings:
            sightings.setdefault(sid, []).append(sighting)
        result.history = [row for row in result.history if row["sample_id"] not in fold.rewritten]
        result.history += [row for rows in fold.history.values() for row in rows]
        result.derived += fold.derived
        result.dispositions.update({p: row["disposition"] for p, row in fold.webhooks.items()})
        result.dispositions.update({p: row["disposition"] for p, row in fold.webhook_updates.items()})
    result.schedules = chatbot(result.derived, chatbot_cuts)
    return result


def chatbot(derived: Sequence[NewEvent], cuts: Iterable[int]) -> dict[str, tuple[ScheduleState, int, datetime | None]]:
    schedules: dict[str, dict[Any, Schedule]] = {}
    where: dict[str, tuple[str, str | None]] = {}
    events = [as_recorded(new, position) for position, new in enumerate(derived, start=1)]
    for page in pages(events, cuts):
        fold = ChatbotFold(POLICY, schedules={k: dict(v) for k, v in schedules.items()}, where=dict(where))
        chatbot_fold_events(fold, page)
        schedules, where = fold.schedules, fold.where
    return {str(s.scenario): (s.state, s.run_count, s.due_at) for s in schedules.get(SID, {}).values()}


def as_recorded(new: NewEvent, position: int) -> RecordedEvent:
    return RecordedEvent(
        position=position, transaction_id=position, event_id=new.event_id, stream_id=new.stream_id,
        stream_version=position, event_type=new.event_type, event_version=new.version, data=new.data,
        metadata=new.metadata, recorded_at=T0,
    )  # fmt: skip


def derived_events(result: Run) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    return [(str(e.event_id), e.event_type, e.data, e.metadata) for e in result.derived]


@PAGES
@given(logs())
def test_page_boundaries_change_nothing_and_derived_ids_are_deterministic(log: Log) -> None:
    one_page = run(log.arrived())
    paged = run(log.arrived(), log.cuts, log.chatbot_cuts)
    assert paged.states == one_page.states
    assert paged.history == one_page.history
    assert derived_events(paged) == derived_events(one_page)
    assert (paged.contents, paged.dispositions) == (one_page.contents, one_page.dispositions)
    assert paged.schedules == one_page.schedules
    ids = [e.event_id for e in paged.derived]
    assert len(ids) == len(set(ids))
    assert ids == [e.event_id for e in run(log.arrived(), log.cuts).derived]  # same input, same ids


@PAGES
@given(logs())
@example(Log((Message("crawl", 0, "Ready to ship"), Message("crawl", 1, "Shipped")), (1, 0)))
def test_pages_in_any_order_with_duplicates_give_the_reference(log: Log) -> None:
    """The issue's property, through the folds the projections run, page by page: status, content,
    history and the chatbot schedule are what the messages give applied once in observed_at order."""
    reference = run(log.in_time_order())
    arrived = run(log.arrived(), log.cuts, log.chatbot_cuts)
    assert arrived.state == reference.state
    assert arrived.moves() == reference.moves()
    assert arrived.contents == reference.contents  # content rows: first and last sighting, newest known values
    assert arrived.schedules == reference.schedules
    once = run([log.messages[i] for i in first_occurrences(log.order)])
    assert arrived.state == once.state  # duplicates add nothing ...
    assert arrived.moves() == once.moves()
    assert arrived.schedules == once.schedules  # ... not even to the chatbot


@PAGES
@given(logs())
def test_pages_in_observed_at_order_with_duplicates_give_exactly_the_reference(log: Log) -> None:
    """A rebuild or a replay, some messages recorded twice: the same state, history and schedule."""
    reference = run(log.in_time_order())
    replayed = run(sorted(log.arrived(), key=lambda m: m.minute), log.cuts, log.chatbot_cuts)
    assert replayed.state == reference.state
    assert replayed.moves() == reference.moves()
    assert replayed.contents == reference.contents
    assert replayed.schedules == reference.schedules


@PAGES
@given(logs())
def test_in_any_order_a_pending_schedule_still_suits_the_final_state(log: Log) -> None:
    """What the chatbot rules do promise whatever the arrival order: nothing stays pending for a sample
    that has left the status (or, for `no_content`, the empty content) that called for it."""
    arrived = run(log.arrived(), log.cuts, log.chatbot_cuts)
    state = arrived.state
    times = {at(m.minute) for m in log.messages}
    for scenario, (schedule_state, _, due_at) in arrived.schedules.items():
        assert due_at is None or due_at in times
        if schedule_state == ScheduleState.PENDING:
            wanted = {"shipped": Status.SHIPPED, "content_pending": Status.CONTENT_PENDING}.get(scenario)
            assert state.status == (wanted or Status.COMPLETED)
            if scenario == "no_content":
                assert state.content_count == 0


def test_a_late_older_observation_is_stale_even_across_pages() -> None:
    """Anchor for the properties: the smallest interleaving, by hand."""
    log = Log((Message("crawl", 0, "Ready to ship"), Message("webhook", 1, "SHIPPED")), (1, 0, 1), frozenset({1, 2}))
    arrived = run(log.arrived(), log.cuts)
    assert (arrived.state.status, arrived.state.status_observed_at) == (Status.SHIPPED, at(1))
    # The first webhook waited for the crawl that introduced the sample; the repeat changes nothing.
    assert arrived.dispositions == {1: "applied", 3: "applied"}
    assert [m[:2] for m in arrived.moves()] == [(None, Status.READY_TO_SHIP), (Status.READY_TO_SHIP, Status.SHIPPED)]
    assert arrived.state.status_source == "webhook"
