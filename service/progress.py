"""How far behind the projections and the chatbot outbox are, read from the database: one home for the
queries the service's gauges (`service/instruments.py`) and the operator tools (`status`, `health`,
`demo`) both use."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

# Counting the events behind a checkpoint is exact but scans the backlog; past this many the screen
# says "more than", which is all an operator needs, and a huge backlog stays cheap to report.
LAG_COUNT_LIMIT = 100_000


class Folding(Protocol):
    """A projection, as far as its progress goes: its name and the event types it folds."""

    @property
    def name(self) -> str: ...
    @property
    def event_types(self) -> Sequence[str]: ...


# Lag is counted in the runner's own order, (transaction_id, position): a position difference would
# count rolled-back holes and miss events that committed late below the checkpoint's position. Only
# events of the types the projection folds count: a projection reads again when it is told that events
# of its types were appended (or at its idle poll), so its checkpoint may rest behind events it has no
# use for. The age is that of the next event the projection will fold, the oldest it has not applied.
# The count must walk the (transaction_id, position) index from the checkpoint: a caught-up projection
# then reads a few index entries. PostgreSQL cannot know the checkpoint when it plans, guesses that a
# third of the log is behind it, and without help reads every event, for every projection at every
# gauge reading (10 s): the whole table (0.9 s at 1 M events, linear in the log), or every event of the
# projection's types through their index and sorts them. The ORDER BY makes the walk the cheap plan,
# and comparing `event_type || ''` keeps the index on the type out of it.
_NO_JIT = text("SET LOCAL jit = off")  # for the rest of the caller's transaction
_PROJECTIONS = text("""
    WITH p AS (
        SELECT name, ord, ARRAY(SELECT jsonb_array_elements_text(CAST(types_json AS jsonb))) AS types
        FROM unnest(CAST(:names AS text[]), CAST(:types AS text[])) WITH ORDINALITY AS p(name, types_json, ord)
    )
    SELECT p.name, c.position, extract(epoch FROM now() - c.updated_at) AS moved_seconds_ago,
           (SELECT max(position) FROM eventstore.events) AS head,
           (SELECT count(*) FROM (
                SELECT 1 FROM eventstore.events e
                WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
                  AND e.event_type || '' = ANY(p.types)  -- not through the index on the type: see above
                ORDER BY e.transaction_id, e.position
                LIMIT :limit) behind) AS lag,
           (SELECT extract(epoch FROM now() - e.recorded_at) FROM eventstore.events e
            WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
              AND e.event_type = ANY(p.types)
            ORDER BY e.transaction_id, e.position LIMIT 1) AS oldest_behind_seconds,
           (SELECT count(*) FROM projections.quarantined_events q WHERE q.projection = p.name) AS quarantined
    FROM p
    LEFT JOIN projections.checkpoints c ON c.projection = p.name
    ORDER BY p.ord
""")


async def projection_progress(conn: AsyncConnection, projections: Sequence[Folding]) -> Sequence[RowMapping]:
    """Per projection: checkpoint position, when it moved, log head, events of its types behind (capped),
    the age in seconds of the oldest of them (null when none), and events it quarantined."""
    params = {
        "names": [p.name for p in projections],
        "types": [json.dumps(list(p.event_types)) for p in projections],
        "limit": LAG_COUNT_LIMIT,
    }
    # That guessed third of a large log also prices the statement high enough for JIT compilation,
    # tens of milliseconds on every reading for a query that reads a few index pages.
    await conn.execute(_NO_JIT)
    return (await conn.execute(_PROJECTIONS, params)).mappings().all()


_OUTBOX_BACKLOG = text("""
    SELECT count(*) AS waiting, extract(epoch FROM now() - min(created_at)) AS oldest_seconds
    FROM eventstore.chatbot_outbox WHERE published_at IS NULL
""")


async def outbox_backlog(conn: AsyncConnection) -> RowMapping:
    """Chatbot tasks not yet confirmed by the broker, and the age in seconds of the oldest (null when none)."""
    return (await conn.execute(_OUTBOX_BACKLOG)).mappings().one()
