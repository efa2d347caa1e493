"""The projection runner: applies the log to each projection in order, exactly once.

Each page is one transaction: lock the projection's checkpoint row, read the next page after it,
apply it, move the checkpoint. The row lock (`FOR UPDATE SKIP LOCKED`) means one replica works a
projection at a time while the others skip it; the checkpoint moving in the same transaction as the
rows means a crash repeats nothing and skips nothing.

A page that fails for a reason other than an outage is folded again one event at a time, each in a
savepoint. An event that fails where its neighbours pass is set aside in `projections.quarantined_events`
and skipped, so one unfoldable event cannot stop a projection for good. When every event fails the
fault is the projection's or the database's, not an event's: the error is raised and the page retried
with backoff, as a quarantine of everything would silently empty the read model.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from opentelemetry.context import Context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.recorded import NewEvent, RecordedEvent
from service.errors import describe, is_transient
from service.eventstore import (
    DEFAULT_PAGE,
    Checkpoint,
    PageSize,
    append_events,
    begin_appending,
    read_page,
    take_fence,
)
from service.loops import Loop
from service.progress import Folding
from service.telemetry import Telemetry, links_to

log = structlog.get_logger("sample_ledger.runner")


class Projection(Folding, Protocol):
    """A read model: its name and the event types it folds (`Folding`), the tables a rebuild empties.

    `apply` writes the projection's own rows and returns the events it derived; the runner appends
    those in the same transaction, so a projection never writes to the log itself."""

    @property
    def derives_events(self) -> bool:
        """Whether `apply` may return events. A projection that never does reads its pages without
        announcing itself as an appender, so its page transactions do not hold other readers back."""
        ...

    @property
    def tables(self) -> Sequence[str]: ...

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]: ...


class UndeclaredDerivation(TypeError):
    """The projection's code is at fault, not an event: raised as it is, never isolated into quarantine."""


def _not_the_events_fault(exc: BaseException) -> bool:
    """An outage, or a projection that broke its own contract: folding event by event would not help."""
    return is_transient(exc) or isinstance(exc, UndeclaredDerivation)


async def _apply(conn: AsyncConnection, projection: Projection, events: Sequence[RecordedEvent]) -> frozenset[str]:
    """Apply a page and append what it derived; the types of the derived events."""
    derived = await projection.apply(conn, events)
    if derived and not projection.derives_events:
        raise UndeclaredDerivation(f"projection {projection.name} derived events but says it derives none "
                                   "(derives_events)")  # fmt: skip
    if derived:  # deterministic ids: re-deriving them (a rebuild, a retried page) appends nothing
        await append_events(conn, derived)
    return frozenset(event.event_type for event in derived)


@dataclass(frozen=True)
class Unfoldable:
    event: RecordedEvent
    error: BaseException


async def _apply_one_at_a_time(
    conn: AsyncConnection, projection: Projection, events: Sequence[RecordedEvent]
) -> tuple[list[Unfoldable], frozenset[str]]:
    """Fold each event in its own savepoint, in order; the events that failed (an outage is raised),
    and the types derived by the others."""
    failed = []
    derived: frozenset[str] = frozenset()
    for event in events:
        try:
            async with conn.begin_nested():
                derived |= await _apply(conn, projection, [event])
        except Exception as exc:
            if _not_the_events_fault(exc):
                raise
            failed.append(Unfoldable(event, exc))
    return failed, derived


_QUARANTINE = text("""
    INSERT INTO projections.quarantined_events (projection, event_position, event_id, event_type, stream_id, error)
    VALUES (:projection, :position, :event_id, :event_type, :stream_id, :error)
    ON CONFLICT (projection, event_position) DO UPDATE SET error = EXCLUDED.error, quarantined_at = now()
""")
_CLEAR_QUARANTINE = text("DELETE FROM projections.quarantined_events WHERE projection = :projection")


async def _apply_isolating(conn: AsyncConnection, projection: Projection, events: Sequence[RecordedEvent],
                           page_failure: BaseException) -> frozenset[str]:  # fmt: skip
    """The page failed as a whole: fold it event by event and quarantine the events at fault, unless
    all of them failed (then the page's own error is raised, and retried); the types derived."""
    failed, derived = await _apply_one_at_a_time(conn, projection, events)
    if len(failed) == len(events):
        raise page_failure
    for bad in failed:
        event, error = bad.event, describe(bad.error)
        await conn.execute(_QUARANTINE, {
            "projection": projection.name, "position": event.position, "event_id": event.event_id,
            "event_type": event.event_type, "stream_id": event.stream_id, "error": error,
        })  # fmt: skip
        log.error("projection.event_quarantined", projection=projection.name, position=event.position,
                  event_type=event.event_type, stream_id=event.stream_id, error=error)  # fmt: skip
    return derived


_ENSURE = text("INSERT INTO projections.checkpoints (projection) VALUES (:name) ON CONFLICT DO NOTHING")
_LOCK = text("""
    SELECT transaction_id::text AS txid_text, position FROM projections.checkpoints
    WHERE projection = :name FOR UPDATE SKIP LOCKED
""")
_LOCK_WAIT = text("SELECT 1 FROM projections.checkpoints WHERE projection = :name FOR UPDATE")
_SAVE = text("""
    UPDATE projections.checkpoints
    SET transaction_id = CAST(:txid AS xid8), position = :position, updated_at = now()
    WHERE projection = :name
""")


async def lock_checkpoint(conn: AsyncConnection, name: str) -> Checkpoint | None:
    """The projection's checkpoint, locked for this transaction; None when another worker holds it.
    The row is created the first time. Every page comes here, so the usual case is one round trip;
    a missing row, or one another worker holds, costs two more."""
    row = (await conn.execute(_LOCK, {"name": name})).first()
    if row is None:  # held by another worker, or not there yet
        await conn.execute(_ENSURE, {"name": name})
        row = (await conn.execute(_LOCK, {"name": name})).first()
    return None if row is None else Checkpoint(int(row[0]), row[1])


async def save_checkpoint(conn: AsyncConnection, name: str, checkpoint: Checkpoint) -> None:
    await conn.execute(_SAVE, {"name": name, "txid": checkpoint.transaction_id, "position": checkpoint.position})


@dataclass(frozen=True)
class PageApplied:
    """What one page did: the events applied (quarantined ones included); whether it was the last
    page below the fence, so that reading again now would find nothing; the types it derived."""

    events: int
    complete: bool
    derived_types: frozenset[str]


async def apply_next_page(engine: AsyncEngine, projection: Projection, size: PageSize = DEFAULT_PAGE,
                          telemetry: Telemetry | None = None) -> int | None:  # fmt: skip
    """Apply one page; the number of events applied (quarantined ones included), or None when another
    worker holds the projection."""
    applied = await apply_a_page(engine, projection, size, telemetry)
    return None if applied is None else applied.events


async def apply_a_page(engine: AsyncEngine, projection: Projection, size: PageSize = DEFAULT_PAGE,
                       telemetry: Telemetry | None = None) -> PageApplied | None:  # fmt: skip
    """`apply_next_page`, saying what the page did; None when another worker holds the projection."""
    try:
        return await _apply_next_page(engine, projection, size, telemetry)
    except Exception as exc:
        if _not_the_events_fault(exc):
            raise
        failure = exc
    # Not on the happy path: savepoints cost round trips, so only a failed page pays for them.
    return await _apply_next_page(engine, projection, size, telemetry, page_failure=failure)


async def _apply_next_page(engine: AsyncEngine, projection: Projection, size: PageSize, telemetry: Telemetry | None,
                           page_failure: BaseException | None = None) -> PageApplied | None:  # fmt: skip
    # The span, when there is one, is entered once the page is read (an empty poll makes none) and
    # ends after the commit, which it covers.
    derived: frozenset[str] = frozenset()
    with contextlib.ExitStack() as tracing:
        async with engine.begin() as conn:
            # A projection that derives events announces its appends here (they come after this
            # transaction's first writes), in the round trip that takes the fence. The fence may predate
            # the checkpoint read, which only makes it more cautious.
            fence = await take_fence(conn, appending=projection.derives_events)
            checkpoint = await lock_checkpoint(conn, projection.name)
            if checkpoint is None:
                return None
            page = await read_page(conn, checkpoint, projection.event_types, size, fence)
            if page.events and telemetry is not None and telemetry.enabled:
                tracing.enter_context(_page_span(telemetry, projection.name, page.events, page_failure))
            if page.events and page_failure is not None:
                derived = await _apply_isolating(conn, projection, page.events, page_failure)
            elif page.events:
                derived = await _apply(conn, projection, page.events)
            if page.next_checkpoint != checkpoint:
                await save_checkpoint(conn, projection.name, page.next_checkpoint)
    if page.events:
        log.debug(
            "projection.applied",
            projection=projection.name,
            events=len(page.events),
            position=page.next_checkpoint.position,
        )
    return PageApplied(len(page.events), page.complete, derived)


def _page_span(telemetry: Telemetry, name: str, events: Sequence[RecordedEvent],
               page_failure: BaseException | None) -> contextlib.AbstractContextManager[object]:  # fmt: skip
    """A page is its own trace (it folds events of many traces), linked to the trace of every event in
    it that carries one: from a message's trace, its pages are one link away. The SDK keeps the first
    128 links of a span (OTEL_SPAN_LINK_COUNT_LIMIT)."""
    return telemetry.span(
        f"ledger.project {name}", parent=Context(), links=links_to(event.metadata for event in events),
        attributes={"sample_ledger.projection": name, "sample_ledger.page.events": len(events),
                    "sample_ledger.page.first_position": events[0].position,
                    "sample_ledger.page.last_position": events[-1].position,
                    "sample_ledger.page.isolating": page_failure is not None},
    )  # fmt: skip


async def rebuild(engine: AsyncEngine, projection: Projection, size: PageSize = DEFAULT_PAGE) -> int:
    """Empty the projection and re-apply the log, all in one transaction; the number of events applied.

    One transaction because the projection must be owned for the whole replay: a live runner in a
    running service skips the locked checkpoint instead of interleaving pages, and readers never see
    half-empty tables (they wait for the commit). The replay stops at the fence taken in this
    transaction; what commits later is left to the live runner, from the saved checkpoint.
    """
    total = 0
    async with engine.begin() as conn:
        if projection.derives_events:  # otherwise the replay appends nothing, and holds no reader back
            await begin_appending(conn)
        await conn.execute(_ENSURE, {"name": projection.name})
        await conn.execute(_LOCK_WAIT, {"name": projection.name})
        if projection.tables:
            await conn.execute(text(f"TRUNCATE {', '.join(projection.tables)}"))
        await conn.execute(_CLEAR_QUARANTINE, {"projection": projection.name})  # folded again below
        checkpoint = Checkpoint()
        while True:
            page = await read_page(conn, checkpoint, projection.event_types, size)
            if page.events:
                await _rebuild_page(conn, projection, page.events)
                total += len(page.events)
            checkpoint = page.next_checkpoint
            if page.complete:
                break
        await save_checkpoint(conn, projection.name, checkpoint)
    log.info("projection.rebuilt", projection=projection.name, events=total, position=checkpoint.position)
    return total


async def _rebuild_page(conn: AsyncConnection, projection: Projection, events: Sequence[RecordedEvent]) -> None:
    """A savepoint per page: a rebuild is one transaction, so a failed page must not abort the rest."""
    try:
        async with conn.begin_nested():
            await _apply(conn, projection, events)
    except Exception as exc:
        if _not_the_events_fault(exc):
            raise
        await _apply_isolating(conn, projection, events, exc)


async def catch_up(engine: AsyncEngine, projection: Projection, size: PageSize = DEFAULT_PAGE) -> int:
    """Apply pages until nothing is left below the fence; the number of events applied."""
    total = 0
    while True:
        applied = await apply_next_page(engine, projection, size)
        if not applied:  # also after a complete page: the empty one moves the checkpoint past what it derived
            return total
        total += applied


class ProjectionRunner:
    """Keeps every projection caught up, each in a loop of its own: the projections are independent
    (each has its own checkpoint, connection and transaction), so one's database waits overlap
    another's folding, and one that keeps failing does not hold the others back.

    A projection's loop reads pages while they come full, then sleeps until it is nudged: by the
    recorder after local appends, and by another projection that derived events, each naming the event
    types appended, so that only the projections that fold them wake (a page with nothing to fold is
    still a transaction of round trips). The idle poll finds what other replicas and processes
    append."""

    def __init__(self, engine: AsyncEngine, projections: Sequence[Projection], size: PageSize,
                 idle_poll_seconds: float, telemetry: Telemetry | None = None) -> None:  # fmt: skip
        self._engine = engine
        self._telemetry = telemetry
        self._size = size
        self._followers: dict[str, list[Callable[[], None]]] = {}
        self._loops = {p.name: Loop(f"projection {p.name}", self._pages_of(p), idle_poll_seconds) for p in projections}
        self._folding: dict[str, list[Loop]] = {}
        for projection in projections:
            for event_type in projection.event_types:
                self._folding.setdefault(event_type, []).append(self._loops[projection.name])

    def nudge(self, event_types: Iterable[str]) -> None:
        """Wake the projections that fold any of `event_types`."""
        for event_type in event_types:
            for loop in self._folding.get(event_type, ()):
                loop.nudge()

    def stop(self) -> None:
        for loop in self._loops.values():
            loop.stop()

    async def run(self) -> None:
        await asyncio.gather(*(loop.run() for loop in self._loops.values()))

    def wake_after(self, projection: str, wake: Callable[[], None]) -> None:
        """Call `wake` whenever `projection` applied events (the dispatcher after the chatbot
        projection): a wake-up instead of the follower's next poll."""
        self._followers.setdefault(projection, []).append(wake)

    def _pages_of(self, projection: Projection) -> Callable[[], Awaitable[bool]]:
        async def apply_one() -> bool:
            """True when there may be more to apply right away: the page applied events and was not
            the last below the fence."""
            applied = await apply_a_page(self._engine, projection, self._size, self._telemetry)
            if not applied or not applied.events:
                return False
            self.nudge(applied.derived_types)
            for wake in self._followers.get(projection.name, ()):
                wake()
            return not applied.complete

        return apply_one
