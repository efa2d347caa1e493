"""`sample-ledger status`: one screen on consumers, dead letters, projection lag, the chatbot outbox and the
oldest open transaction. Read-only; a part that cannot be reached says so on its line, the rest still shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.topology import build_topology
from service.database import create_engine
from service.errors import describe
from service.ops.failures import reason_for
from service.read_models import all_projections
from service.settings import Settings

log = structlog.get_logger("sample_ledger.status")

# Counting the events behind a checkpoint is exact but scans the backlog; past this many the screen
# says "more than", which is all an operator needs, and a huge backlog stays cheap to report.
LAG_COUNT_LIMIT = 100_000

# Lag is counted in the runner's own order, (transaction_id, position): a position difference would
# count rolled-back holes and miss events that committed late below the checkpoint's position.
_PROJECTIONS = text("""
    SELECT p.name, c.position, extract(epoch FROM now() - c.updated_at) AS moved_seconds_ago,
           (SELECT max(position) FROM eventstore.events) AS head,
           (SELECT count(*) FROM (
                SELECT 1 FROM eventstore.events e
                WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
                LIMIT :limit) behind) AS lag
    FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS p(name, ord)
    LEFT JOIN projections.checkpoints c ON c.projection = p.name
    ORDER BY p.ord
""")


async def projection_progress(conn: AsyncConnection, names: Sequence[str]) -> Sequence[RowMapping]:
    """Per projection: checkpoint position, when it moved, log head, and events behind (capped)."""
    return (await conn.execute(_PROJECTIONS, {"names": list(names), "limit": LAG_COUNT_LIMIT})).mappings().all()


_OUTBOX = text("""
    SELECT b.waiting, b.oldest_seconds, b.most_attempts, f.task_id, f.publication, f.attempts, f.last_error
    FROM (SELECT count(*) AS waiting, extract(epoch FROM now() - min(created_at)) AS oldest_seconds,
                 max(attempts) AS most_attempts
          FROM eventstore.chatbot_outbox WHERE published_at IS NULL) b
    LEFT JOIN LATERAL (
        SELECT task_id, publication, attempts, last_error FROM eventstore.chatbot_outbox
        WHERE published_at IS NULL AND last_error IS NOT NULL
        ORDER BY created_at LIMIT 1) f ON true
""")

# Cluster-wide, so an operator sees what else runs on the server; only an appender of this database
# (a transaction holding the appender lock, service/eventstore.py) holds the projections' read fence.
# The query text is left out: it may carry data.
_OLDEST_TRANSACTION = text("""
    SELECT pid, datname, usename, application_name, state, backend_xid IS NOT NULL AS has_xid,
           EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
                     AND l.classid = 7241 AND l.objid = 1 AND l.objsubid = 2
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
               AS appending,
           xact_start, extract(epoch FROM now() - xact_start) AS age_seconds
    FROM pg_stat_activity a
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
      AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
    ORDER BY xact_start LIMIT 1
""")

DatabasePart = Callable[[AsyncConnection, Settings], Awaitable[list[str]]]


def age(seconds: float | None) -> str:
    """A duration as people read it: 42s, 3m 5s, 2h 10m, 4d 3h."""
    if seconds is None:
        return "?"
    whole = max(int(seconds), 0)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


async def peek_queue(connection: aio_pika.abc.AbstractConnection, name: str) -> tuple[int, int] | None:
    """(consumers, messages ready) of a queue, by passive declare; None when the queue does not exist."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return result.consumer_count or 0, result.message_count or 0
    except aio_pika.exceptions.ChannelClosed:
        return None  # a passive declare of a missing queue closes the channel with NOT_FOUND
    finally:
        if not channel.is_closed:
            await channel.close()


async def broker_lines(settings: Settings) -> list[str]:
    """Consumers and backlog of every inbound queue, then the dead-letter queue's depth."""
    topology = build_topology(settings.amqp_prefix)
    try:
        connection = await aio_pika.connect(settings.amqp_url, timeout=5)
    except Exception as exc:
        reason = f"  {reason_for(exc, settings)}"
        return ["Consumers", reason, "Dead letters", reason]
    names = [route.queue.name for route in topology.routes.values()]
    width = max(len(name) for name in [*names, topology.dead_letter_queue.name])
    lines = ["Consumers"]
    try:
        for name in names:
            lines.append(f"  {name:<{width}}  {consumer_text(await peek_queue(connection, name))}")
        lines.append("Dead letters")
        dead = await peek_queue(connection, topology.dead_letter_queue.name)
        found = "missing (the service declares it when it starts)" if dead is None else plural(dead[1], "message")
        lines.append(f"  {topology.dead_letter_queue.name:<{width}}  {found}")
    except Exception as exc:
        lines.append(f"  could not read the queues: {describe(exc)}")
    finally:
        await connection.close()
    return lines


def consumer_text(peeked: tuple[int, int] | None) -> str:
    if peeked is None:
        return "missing (is the service running?)"
    consumers, waiting = peeked
    taking = plural(consumers, "consumer") if consumers else "NO CONSUMER"
    return f"{taking}, {waiting} waiting"


async def projection_lines(conn: AsyncConnection, settings: Settings) -> list[str]:
    names = [p.name for p in all_projections(settings)]
    rows = await projection_progress(conn, names)
    head = rows[0]["head"] if rows else None
    width = max(len(name) for name in names)
    lines = [f"  log head: position {head if head is not None else '- (no events yet)'}"]
    for row in rows:
        lag = f"more than {LAG_COUNT_LIMIT:,}" if row["lag"] >= LAG_COUNT_LIMIT else str(row["lag"])
        if row["position"] is None:
            lines.append(f"  {row['name']:<{width}}  no checkpoint yet, lag {lag} events")
            continue
        moved = age(float(row["moved_seconds_ago"]))
        lines.append(f"  {row['name']:<{width}}  checkpoint {row['position']}, lag {lag} events, moved {moved} ago")
    return lines


async def outbox_lines(conn: AsyncConnection, _: Settings) -> list[str]:
    row = (await conn.execute(_OUTBOX)).mappings().one()
    if not row["waiting"]:
        return ["  0 waiting"]
    lines = [
        f"  {row['waiting']} waiting, oldest {age(float(row['oldest_seconds']))} old, "
        f"most attempts {row['most_attempts']}"
    ]
    if row["task_id"] is not None:
        lines.append(
            f"  oldest failing: task {row['task_id']} publication {row['publication']} "
            f"after {plural(row['attempts'], 'attempt')}: {row['last_error']}"
        )
    return lines


async def transaction_lines(conn: AsyncConnection, _: Settings) -> list[str]:
    row = (await conn.execute(_OLDEST_TRANSACTION)).mappings().first()
    if row is None:
        return ["  none (besides this command)"]
    return [f"  {transaction_text(row)}"]


def transaction_text(row: Any) -> str:
    where = f"pid {row['pid']} on {row['datname']} (user {row['usename']}, app {row['application_name'] or '-'})"
    started = row["xact_start"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    # Only an appender with a transaction id holds the fence projections read below.
    if row["has_xid"] and row["appending"]:
        effect = "appends events, so it holds projections back until it ends"
    else:
        effect = "appends no events, so it does not hold projections back"
    return f"{where}: {row['state']} for {age(float(row['age_seconds']))} (since {started}); {effect}"


DATABASE_PARTS: list[tuple[str, DatabasePart]] = [
    ("Projections", projection_lines),
    ("Outbox (chatbot tasks not yet confirmed by the broker)", outbox_lines),
    ("Oldest open transaction", transaction_lines),
]


async def database_lines(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            # Autocommit: a failing part must not abort the others' transaction, and this command must
            # not itself hold a transaction open while it looks for the ones that do.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            lines: list[str] = []
            for title, part in DATABASE_PARTS:
                lines += [title, *await guarded(part, conn, settings)]
            return lines
    except Exception as exc:
        reason = f"  {reason_for(exc, settings)}"
        return [line for title, _ in DATABASE_PARTS for line in (title, reason)]
    finally:
        await engine.dispose()


async def guarded(part: DatabasePart, conn: AsyncConnection, settings: Settings) -> list[str]:
    try:
        return await part(conn, settings)
    except Exception as exc:
        log.warning("status.part_failed", part=part.__name__, error=describe(exc))
        return [f"  could not read: {describe(exc)}"]


async def status_report(settings: Settings) -> list[str]:
    """One screen: consumers, dead letters, projection checkpoints and lag, outbox backlog, oldest open transaction."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return [f"Sample Ledger status at {now}", *await broker_lines(settings), *await database_lines(settings)]
