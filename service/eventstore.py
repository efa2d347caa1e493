"""The event store: idempotent set-based appends and gap-free reads of `eventstore.events`.

Gap-free reading. `position` comes from a sequence taken at INSERT, but a row becomes visible only
when its transaction commits, so a reader that remembers "the last position I saw" can step over a
row whose transaction commits after a later one. Every row therefore records the id of its writing
transaction (`pg_current_xact_id()`), and readers take only rows whose transaction id is below a
fence: the oldest transaction that is still appending (each holds the appender lock from before its
first write), so no row below the fence can still appear. Readers order by `(transaction_id,
position)` and checkpoint that pair, so a transaction that took a lower position but a higher id is
read after, not skipped. A long-running appender holds the fence back: readers lag, they never lose
an event; a transaction that appends nothing holds nobody back. Writers are never serialised. (The
same defence as Emmett's PostgreSQL store, narrowed to appenders; see docs/decisions/0001.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from events import json_text
from events.recorded import NewEvent, RecordedEvent
from events.upcast import upcast


class StreamVersionConflict(RuntimeError):
    """Two writers raced for the same stream version; the append is safe to retry."""


@dataclass(frozen=True, order=True)
class Checkpoint:
    transaction_id: int = 0
    position: int = 0


# One statement: the stream heads are looked up inside the INSERT, not in a round trip before it
# (every append paid one). Each event's version is its stream's head plus its rank among the events
# of that stream in this call, so an event that turns out to be a duplicate still takes a number, as
# it would in any order of checking. Two writers that race for a stream both compute the same next
# version: the loser's row is skipped by the unique (stream_id, stream_version) and reported below.
_INSERT = text("""
    WITH e AS (
        SELECT * FROM unnest(CAST(:event_ids AS uuid[]), CAST(:stream_ids AS text[]), CAST(:types AS text[]),
                             CAST(:type_versions AS int[]), CAST(:data AS text[]), CAST(:metadata AS text[]),
                             CAST(:dedupe_keys AS text[]), CAST(:personal AS text[])) WITH ORDINALITY
             AS e(event_id, stream_id, event_type, event_version, data, metadata, dedupe_key, personal, ord)
    ), heads AS (
        SELECT s.stream_id,
               coalesce((SELECT max(x.stream_version) FROM eventstore.events x WHERE x.stream_id = s.stream_id), 0)
                   AS head
        FROM (SELECT DISTINCT stream_id FROM e) AS s
    )
    INSERT INTO eventstore.events
        (event_id, stream_id, stream_version, event_type, event_version, data, metadata, dedupe_key, personal)
    SELECT e.event_id, e.stream_id, heads.head + row_number() OVER (PARTITION BY e.stream_id ORDER BY e.ord),
           e.event_type, e.event_version, e.data::jsonb, e.metadata::jsonb, e.dedupe_key, e.personal::jsonb
    FROM e JOIN heads ON heads.stream_id = e.stream_id
    ORDER BY e.ord  -- positions follow the order the caller gave
    ON CONFLICT DO NOTHING
    RETURNING event_id
""")

_ALREADY_THERE = text("""
    SELECT event_id, dedupe_key FROM eventstore.events
    WHERE event_id = ANY(CAST(:event_ids AS uuid[])) OR dedupe_key = ANY(CAST(:dedupe_keys AS text[]))
""")


async def append_events(conn: AsyncConnection, events: Sequence[NewEvent]) -> list[bool]:
    """Append in one statement; per event, True when recorded now, False when it was already there.

    An event is "already there" when its `event_id` or `dedupe_key` was recorded before: that is how
    a redelivered message or a re-derived event becomes a no-op. Stream versions are assigned here.
    """
    inserted = await insert_events(conn, events)
    skipped = [e for e in events if e.event_id not in inserted]
    if skipped:
        await check_skipped_are_duplicates(conn, skipped)
    return [e.event_id in inserted for e in events]


async def insert_events(conn: AsyncConnection, events: Sequence[NewEvent]) -> set[UUID]:
    """The ids of the events recorded now, in one statement; the others were skipped, and
    `check_skipped_are_duplicates` says whether each was there before or lost a race for its version.

    Apart from `append_events` for a caller that answers for the recorded ones first: on a connection
    that commits each statement, they are durable once this returns, whatever the check then meets."""
    if not events:
        return set()
    return {
        row[0]
        for row in await conn.execute(
            _INSERT,
            {
                "event_ids": [e.event_id for e in events],
                "stream_ids": [e.stream_id for e in events],
                "types": [e.event_type for e in events],
                "type_versions": [e.version for e in events],
                "data": [json_text.dumps(e.data) for e in events],
                "metadata": [json_text.dumps(e.metadata) for e in events],
                "dedupe_keys": [e.dedupe_key for e in events],
                "personal": [json_text.dumps(e.personal) if e.personal is not None else None for e in events],
            },
        )
    }


async def check_skipped_are_duplicates(conn: AsyncConnection, skipped: Sequence[NewEvent]) -> None:
    """Raise StreamVersionConflict unless every skipped event's id or dedupe key is already recorded."""
    rows = (
        await conn.execute(
            _ALREADY_THERE,
            {
                "event_ids": [e.event_id for e in skipped],
                "dedupe_keys": [e.dedupe_key for e in skipped if e.dedupe_key],
            },
        )
    ).all()
    known_ids = {r[0] for r in rows}
    known_keys = {r[1] for r in rows if r[1]}
    for event in skipped:
        if event.event_id not in known_ids and event.dedupe_key not in known_keys:
            raise StreamVersionConflict(f"stream {event.stream_id} moved on while appending; retry")


# Every appending transaction holds this shared lock from before its first write (migration 0005's
# trigger takes it, or refuses a transaction that wrote first), so the appenders still running are
# exactly the transactions that hold it and have a transaction id.
# (Migration 0005's trigger names the same two keys; migrations never import application code.)
APPENDER_LOCK = (7241, 1)
_BEGIN_APPENDING = text(f"SELECT pg_advisory_xact_lock_shared{APPENDER_LOCK}")


def holds_appender_lock(lock: str) -> str:
    """SQL: the `pg_locks` row `lock` is a granted appender lock of this database (the two-key form of
    an advisory lock shows as objsubid 2)."""
    key_class, key_object = APPENDER_LOCK
    return (
        f"{lock}.locktype = 'advisory' AND {lock}.granted AND {lock}.classid = {key_class} "
        f"AND {lock}.objid = {key_object} AND {lock}.objsubid = 2 "
        f"AND {lock}.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )


# The fence: the oldest transaction in this snapshot that still appends here, else the snapshot's
# xmax (a transaction that gets its id later gets a higher one). Transactions that do not append (in
# another database on the server, or writing other tables) no longer hold readers back. pg_locks
# carries 32-bit ids; the snapshot's in-progress list has the full xid8 they are matched against.
# The next statement takes a new snapshot (READ COMMITTED), so an appender that committed after this
# one looked is visible to it.
_FENCE = text(f"""
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    appenders AS (
        SELECT t.transactionid::text::bigint AS xid32
        FROM pg_locks a JOIN pg_locks t ON t.virtualtransaction = a.virtualtransaction
        WHERE {holds_appender_lock("a")} AND t.locktype = 'transactionid' AND t.granted)
    SELECT coalesce(
        (SELECT min(x) FROM snap, pg_snapshot_xip(snap.s) AS x
         WHERE (x::text::numeric % 4294967296)::bigint IN (SELECT xid32 FROM appenders)),
        (SELECT pg_snapshot_xmax(s) FROM snap))::text AS fence_text
""")
# The same, for a transaction that will append: it announces itself in the same round trip.
_ANNOUNCE_AND_FENCE = text(f"{_FENCE.text}    FROM (SELECT pg_advisory_xact_lock_shared{APPENDER_LOCK}) AS announced\n")


async def begin_appending(conn: AsyncConnection) -> None:
    """Announce that this transaction will append events; call it before the transaction's first
    write (a transaction whose first write is the append itself need not: the trigger takes it)."""
    await conn.execute(_BEGIN_APPENDING)


async def take_fence(conn: AsyncConnection, *, appending: bool) -> int:
    """The read fence for the statements after this one. `appending`: this transaction will append (a
    projection's page that derives events), so it announces itself, as `begin_appending` does, in the
    same round trip; call it before the transaction's first write. A reader that appends nothing does
    not announce, so that it never holds other readers' fences back."""
    return int((await conn.execute(_ANNOUNCE_AND_FENCE if appending else _FENCE)).scalar_one())


# The text form of a transaction id gets its own alias, never `transaction_id`: an ORDER BY name binds to
# an output column first, so `transaction_id::text AS transaction_id` (the implicit name of the cast)
# would order ids as text, 10014 before 9902, and a page would end on the wrong event. ORDER BY here
# always means the xid8 column, which is also what the (transaction_id, position) index serves.
#
# A page also ends once the events before it hold `max_bytes` of stored data (`pg_column_size`: as
# stored, so compressed, and read without fetching the value): one crawl batch can be thousands of
# rows, and a page of 500 of them was seconds of folding in one transaction, during which nothing
# downstream could start. `candidates` says how many the LIMIT found, so the reader knows whether the
# page was cut short. The window runs over the LIMIT's rows only; the data of an event left out of the
# page is never sent.
#
# Every row also carries the last event visible below the fence, of any type (one index probe from the
# top): when the page is complete the checkpoint moves to it, so readers do not rescan a tail of events
# they ignore. It is in the same statement, and so the same snapshot, as the page. With no event below
# the fence nothing comes back; with no page the one row has only the last visible event.
_READ = text("""
    WITH page AS (
        SELECT position, transaction_id, event_id, stream_id, stream_version, event_type, event_version,
               data, metadata, recorded_at, personal, pg_column_size(data) AS stored_bytes
        FROM eventstore.events
        WHERE (transaction_id, position) > (CAST(:txid AS xid8), :position)
          AND transaction_id < CAST(:fence AS xid8)
          AND event_type = ANY(CAST(:types AS text[]))
        ORDER BY transaction_id, position
        LIMIT :limit
    ), weighed AS (
        SELECT *, sum(stored_bytes) OVER (ORDER BY transaction_id, position) - stored_bytes AS bytes_before,
               count(*) OVER () AS candidates
        FROM page
    ), last_visible AS (
        SELECT transaction_id::text AS last_txid_text, position AS last_position FROM eventstore.events
        WHERE transaction_id < CAST(:fence AS xid8)
        ORDER BY transaction_id DESC, position DESC LIMIT 1
    )
    SELECT w.position, w.transaction_id::text AS txid_text, w.event_id, w.stream_id, w.stream_version,
           w.event_type, w.event_version, w.data, w.metadata, w.recorded_at, w.personal, w.candidates,
           v.last_txid_text, v.last_position
    FROM last_visible AS v LEFT JOIN weighed AS w ON w.bytes_before < :max_bytes
    ORDER BY w.transaction_id, w.position
""")


@dataclass(frozen=True)
class Page:
    events: list[RecordedEvent]
    next_checkpoint: Checkpoint
    complete: bool  # nothing of interest is left below the fence after this page


@dataclass(frozen=True)
class PageSize:
    """How much one page may hold: `events` at most, and no more events once those before hold
    `stored_bytes` of stored data (so the event that crosses it is the page's last, and the first
    always goes: see `_READ`). `PROJECTION_BATCH_SIZE` and `PROJECTION_PAGE_BYTES` set it."""

    events: int = 500
    stored_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if self.events < 1 or self.stored_bytes < 1:  # an empty page would read as "nothing left" and skip the rest
            raise ValueError(f"a page needs room for one event ({self})")


DEFAULT_PAGE = PageSize()


async def read_page(conn: AsyncConnection, after: Checkpoint, event_types: Sequence[str],
                    size: PageSize = DEFAULT_PAGE, fence: int | None = None) -> Page:  # fmt: skip
    """Events of the given types after `after`, in (transaction, position) order, never past the fence,
    as many as `size` allows. `fence` comes from `take_fence` earlier in the transaction (it must be a
    statement before this one); without it, this takes one.

    When the page is neither full nor cut short, everything of interest below the fence has been read,
    so the checkpoint moves to the last visible event even if it was of another type: readers do not
    rescan a long tail of events they ignore.
    """
    if fence is None:
        fence = await take_fence(conn, appending=False)
    rows = (
        await conn.execute(
            _READ,
            {
                "txid": after.transaction_id,
                "position": after.position,
                "fence": fence,
                "types": list(event_types),
                "limit": size.events,
                "max_bytes": size.stored_bytes,
            },
        )
    ).all()
    events = [
        RecordedEvent(
            position=r[0],
            transaction_id=int(r[1]),
            event_id=r[2],
            stream_id=r[3],
            stream_version=r[4],
            event_type=r[5],
            event_version=r[6],
            data=upcast(r[5], r[6], r[7]),
            metadata=r[8],
            recorded_at=r[9],
            personal=r[10],
        )
        for r in rows
        if r[0] is not None
    ]
    checkpoint = after
    if events:
        checkpoint = Checkpoint(events[-1].transaction_id, events[-1].position)
    candidates = rows[0][11] if events else 0
    complete = candidates < size.events and len(events) == candidates
    if complete and rows:
        checkpoint = max(checkpoint, Checkpoint(int(rows[0][12]), rows[0][13]))
    return Page(events, checkpoint, complete)
