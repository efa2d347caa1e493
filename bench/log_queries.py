"""Questions the benchmark asks of the event log. Each takes `since`, the log's head position before
the workload began: positions come from a sequence taken at insert, so everything a workload made
lies above it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_HEAD = text("SELECT coalesce(max(position), 0) FROM eventstore.events")
# Inbound events are the ones with an idempotency key; the primary key keeps the range scan short.
_RECORDED = text("SELECT count(*) FROM eventstore.events WHERE position > :since AND dedupe_key IS NOT NULL")
_MESSAGE_EVENTS = text("""
    SELECT metadata->>'message_id', transaction_id::text AS txid_text, position FROM eventstore.events
    WHERE position > :since AND dedupe_key IS NOT NULL
""")
_BY_TYPE = text("SELECT event_type, count(*) FROM eventstore.events WHERE position > :since GROUP BY 1 ORDER BY 2 DESC")
_ISSUED = text("""
    SELECT data->>'task_id' FROM eventstore.events WHERE position > :since AND event_type = 'chatbot.task_issued'
""")
# The message behind each (sample, scenario): the first derived change that schedules the scenario
# (docs/domain.md, "Scenarios"), and through its causation id the inbound event and its message id.
# First, because a scenario's first run is scheduled once: a later change cannot have caused it.
_TASK_CAUSES = text("""
    WITH triggers AS (
        SELECT e.data->>'sample_id' AS sample_id, e.position, CAST(e.metadata->>'causation_id' AS uuid) AS cause,
               CASE
                 WHEN e.event_type = 'sample.status_changed' AND e.data->>'to_status' IN ('shipped', 'content_pending')
                      AND NOT CAST(e.data->>'first_sighting' AS boolean) AND NOT CAST(e.data->>'regression' AS boolean)
                   THEN e.data->>'to_status'
                 WHEN e.event_type = 'sample.status_changed' AND e.data->>'to_status' = 'completed'
                      AND e.data->>'content_count' = '0' AND NOT CAST(e.data->>'regression' AS boolean)
                   THEN 'no_content'
                 WHEN e.event_type = 'sample.content_observed' AND e.data->>'status' = 'completed'
                      AND e.data->>'content_count' = '0'
                   THEN 'no_content'
                 WHEN e.event_type = 'sample.status_changed' AND e.data->>'to_status' = 'completed'
                      AND e.data->>'content_count' = '0'
                      AND coalesce(CAST(e.data->>'content_changed' AS boolean), false)
                   THEN 'no_content'  -- a regression into completed that carried its content change (decision 0007)
               END AS scenario
        FROM eventstore.events e
        WHERE e.position > :since AND e.event_type IN ('sample.status_changed', 'sample.content_observed'))
    SELECT DISTINCT ON (t.sample_id, t.scenario) t.sample_id, t.scenario, inbound.metadata->>'message_id'
    FROM triggers t JOIN eventstore.events inbound ON inbound.event_id = t.cause
    WHERE t.scenario IS NOT NULL
    ORDER BY t.sample_id, t.scenario, t.position
""")


async def head_position(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(_HEAD)).scalar_one())


async def recorded_since(engine: AsyncEngine, since: int) -> int:
    """Inbound messages recorded above `since`."""
    async with engine.connect() as conn:
        return int((await conn.execute(_RECORDED, {"since": since})).scalar_one())


async def message_events_since(engine: AsyncEngine, since: int) -> dict[str, tuple[int, int]]:
    """For each message recorded above `since`: its event's place in the log (transaction id, position),
    the order the projection runner reads in."""
    async with engine.connect() as conn:
        rows = await conn.execute(_MESSAGE_EVENTS, {"since": since})
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}


async def events_by_type_since(engine: AsyncEngine, since: int) -> dict[str, int]:
    """What the workload made the service append: its messages, derived facts, chatbot decisions."""
    async with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in await conn.execute(_BY_TYPE, {"since": since})}


async def issued_tasks_since(engine: AsyncEngine, since: int) -> set[str]:
    async with engine.connect() as conn:
        return {r[0] for r in await conn.execute(_ISSUED, {"since": since})}


async def task_causes_since(engine: AsyncEngine, since: int) -> dict[tuple[str, str], str]:
    """(sample id, scenario) → the message id whose event first scheduled that scenario."""
    async with engine.connect() as conn:
        return {(r[0], r[1]): r[2] for r in await conn.execute(_TASK_CAUSES, {"since": since})}
