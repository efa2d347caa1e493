"""How far behind the projections and the chatbot outbox are, read from the database: one home for the
queries the service's gauges (`service/instruments.py`) and the operator tools (`status`, `health`,
`demo`) both use."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

# Counting the events behind a checkpoint is exact but scans the backlog; past this many the screen
# says "more than", which is all an operator needs, and a huge backlog stays cheap to report.
LAG_COUNT_LIMIT = 100_000

# Lag is counted in the runner's own order, (transaction_id, position): a position difference would
# count rolled-back holes and miss events that committed late below the checkpoint's position. The
# age is that of the next event the projection will read, the oldest it has not applied.
_PROJECTIONS = text("""
    SELECT p.name, c.position, extract(epoch FROM now() - c.updated_at) AS moved_seconds_ago,
           (SELECT max(position) FROM eventstore.events) AS head,
           (SELECT count(*) FROM (
                SELECT 1 FROM eventstore.events e
                WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
                LIMIT :limit) behind) AS lag,
           (SELECT extract(epoch FROM now() - e.recorded_at) FROM eventstore.events e
            WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
            ORDER BY e.transaction_id, e.position LIMIT 1) AS oldest_behind_seconds,
           (SELECT count(*) FROM projections.quarantined_events q WHERE q.projection = p.name) AS quarantined
    FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS p(name, ord)
    LEFT JOIN projections.checkpoints c ON c.projection = p.name
    ORDER BY p.ord
""")


async def projection_progress(conn: AsyncConnection, names: Sequence[str]) -> Sequence[RowMapping]:
    """Per projection: checkpoint position, when it moved, log head, events behind (capped), the age in
    seconds of the oldest of them (null when none), and events it quarantined."""
    return (await conn.execute(_PROJECTIONS, {"names": list(names), "limit": LAG_COUNT_LIMIT})).mappings().all()


_OUTBOX_BACKLOG = text("""
    SELECT count(*) AS waiting, extract(epoch FROM now() - min(created_at)) AS oldest_seconds
    FROM eventstore.chatbot_outbox WHERE published_at IS NULL
""")


async def outbox_backlog(conn: AsyncConnection) -> RowMapping:
    """Chatbot tasks not yet confirmed by the broker, and the age in seconds of the oldest (null when none)."""
    return (await conn.execute(_OUTBOX_BACKLOG)).mappings().one()
