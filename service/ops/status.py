"""`sample-ledger status`: one screen on consumers, dead letters, projection lag, the chatbot outbox and the
oldest open transaction. Read-only; a part that cannot be reached says so on its line, the rest still shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.topology import build_topology
from service.database import create_engine
from service.errors import describe
from service.eventstore import holds_appender_lock
from service.ops.failures import reason_for
from service.progress import LAG_COUNT_LIMIT, projection_progress
from service.read_models import all_projections
from service.settings import Settings

log = structlog.get_logger("sample_ledger.status")

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
_OLDEST_TRANSACTION = text(f"""
    SELECT pid, datname, usename, application_name, state, backend_xid IS NOT NULL AS has_xid,
           EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND {holds_appender_lock("l")}) AS appending,
           xact_start, extract(epoch FROM now() - xact_start) AS age_seconds
    FROM pg_stat_activity a
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
      AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
    ORDER BY xact_start LIMIT 1
""")


# A role without pg_read_all_stats sees other roles' sessions only in part: their pid, database, user and
# transaction id, but not their state, start or type (backend_type is null), so the query above cannot
# rank them. Counted here, so that another role's appender (an operator's psql, a superuser's script),
# which holds the projections back all the same, is not silently left out when `status` runs as the
# service's role.
_HIDDEN_TRANSACTIONS = text(f"""
    SELECT current_user AS role, count(*) AS transactions,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND {holds_appender_lock("l")}))
               AS appending
    FROM pg_stat_activity a
    WHERE a.backend_type IS NULL AND a.backend_xid IS NOT NULL
""")


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


async def broker_part(settings: Settings) -> dict[str, Any]:
    """Consumers and backlog of every inbound queue, then the dead-letter queue's depth. A queue is
    None when it does not exist; `error` says why the broker or the queues could not be read."""
    topology = build_topology(settings.amqp_prefix)
    part: dict[str, Any] = {"reachable": False, "error": None, "queues": {}, "dead_letters": None}
    try:
        connection = await aio_pika.connect(settings.amqp_url, timeout=5)
    except Exception as exc:
        part["error"] = reason_for(exc, settings)
        return part
    part["reachable"] = True
    try:
        for route in topology.routes.values():
            part["queues"][route.queue.name] = _queue(await peek_queue(connection, route.queue.name))
        dead = await peek_queue(connection, topology.dead_letter_queue.name)
        part["dead_letters"] = {"queue": topology.dead_letter_queue.name, "messages": None if dead is None else dead[1]}
    except Exception as exc:
        part["error"] = f"could not read the queues: {describe(exc)}"
    finally:
        await connection.close()
    return part


def _queue(peeked: tuple[int, int] | None) -> dict[str, int] | None:
    return None if peeked is None else {"consumers": peeked[0], "waiting": peeked[1]}


def broker_report_lines(part: dict[str, Any], settings: Settings) -> list[str]:
    if not part["reachable"]:
        reason = f"  {part['error']}"
        return ["Consumers", reason, "Dead letters", reason]
    topology = build_topology(settings.amqp_prefix)
    names = [route.queue.name for route in topology.routes.values()]
    width = max(len(name) for name in [*names, topology.dead_letter_queue.name])
    lines = ["Consumers"]
    for name, queue in part["queues"].items():
        peeked = None if queue is None else (queue["consumers"], queue["waiting"])
        lines.append(f"  {name:<{width}}  {consumer_text(peeked)}")
    if len(part["queues"]) == len(names):
        lines.append("Dead letters")
    if part["dead_letters"] is not None:
        messages = part["dead_letters"]["messages"]
        found = "missing (the service declares it when it starts)" if messages is None else plural(messages, "message")
        lines.append(f"  {topology.dead_letter_queue.name:<{width}}  {found}")
    if part["error"]:
        lines.append(f"  {part['error']}")
    return lines


async def broker_lines(settings: Settings) -> list[str]:
    """Consumers and backlog of every inbound queue, then the dead-letter queue's depth."""
    return broker_report_lines(await broker_part(settings), settings)


def consumer_text(peeked: tuple[int, int] | None) -> str:
    if peeked is None:
        return "missing (is the service running?)"
    consumers, waiting = peeked
    taking = plural(consumers, "consumer") if consumers else "NO CONSUMER"
    return f"{taking}, {waiting} waiting"


async def projection_data(conn: AsyncConnection, settings: Settings) -> dict[str, Any]:
    rows = await projection_progress(conn, all_projections(settings))
    return {
        "head": rows[0]["head"] if rows else None,
        "projections": [
            {
                "name": row["name"],
                "checkpoint": row["position"],
                "lag": int(row["lag"]),
                "lag_is_at_least": int(row["lag"]) >= LAG_COUNT_LIMIT,  # the count stops there
                "moved_seconds_ago": None if row["position"] is None else float(row["moved_seconds_ago"]),
                "quarantined": int(row["quarantined"]),
            }
            for row in rows
        ],
    }


def projection_text(data: dict[str, Any]) -> list[str]:
    width = max((len(p["name"]) for p in data["projections"]), default=0)
    head = data["head"]
    lines = [f"  log head: position {head if head is not None else '- (no events yet)'}"]
    for row in data["projections"]:
        lag = f"more than {LAG_COUNT_LIMIT:,}" if row["lag_is_at_least"] else str(row["lag"])
        if row["checkpoint"] is None:
            lines.append(f"  {row['name']:<{width}}  no checkpoint yet, lag {lag} events")
            continue
        moved = age(row["moved_seconds_ago"])
        line = f"  {row['name']:<{width}}  checkpoint {row['checkpoint']}, lag {lag} events, moved {moved} ago"
        if row["quarantined"]:
            line += f", {plural(row['quarantined'], 'event')} QUARANTINED (projections.quarantined_events)"
        lines.append(line)
    return lines


async def outbox_data(conn: AsyncConnection, _: Settings) -> dict[str, Any]:
    row = (await conn.execute(_OUTBOX)).mappings().one()
    data: dict[str, Any] = {"waiting": int(row["waiting"] or 0), "oldest_seconds": None, "most_attempts": None,
                            "oldest_failing": None}  # fmt: skip
    if data["waiting"]:
        data.update(oldest_seconds=float(row["oldest_seconds"]), most_attempts=row["most_attempts"])
    if row["task_id"] is not None:
        data["oldest_failing"] = {key: row[key] for key in ("task_id", "publication", "attempts", "last_error")}
    return data


def outbox_text(data: dict[str, Any]) -> list[str]:
    if not data["waiting"]:
        return ["  0 waiting"]
    lines = [
        f"  {data['waiting']} waiting, oldest {age(data['oldest_seconds'])} old, most attempts {data['most_attempts']}"
    ]
    if (failing := data["oldest_failing"]) is not None:
        lines.append(
            f"  oldest failing: task {failing['task_id']} publication {failing['publication']} "
            f"after {plural(failing['attempts'], 'attempt')}: {failing['last_error']}"
        )
    return lines


async def transaction_data(conn: AsyncConnection, _: Settings) -> dict[str, Any] | None:
    row = (await conn.execute(_OLDEST_TRANSACTION)).mappings().first()
    if row is None:
        return None
    return {**dict(row), "age_seconds": float(row["age_seconds"]), "text": transaction_text(row)}


def transaction_text_lines(data: dict[str, Any] | None) -> list[str]:
    return ["  none (besides this command)"] if data is None else [f"  {data['text']}"]


async def projection_lines(conn: AsyncConnection, settings: Settings) -> list[str]:
    return projection_text(await projection_data(conn, settings))


async def outbox_lines(conn: AsyncConnection, settings: Settings) -> list[str]:
    return outbox_text(await outbox_data(conn, settings))


async def transaction_lines(conn: AsyncConnection, settings: Settings) -> list[str]:
    return transaction_text_lines(await transaction_data(conn, settings))


async def hidden_transaction_data(conn: AsyncConnection, _: Settings) -> dict[str, Any]:
    row = (await conn.execute(_HIDDEN_TRANSACTIONS)).mappings().one()
    return {"role": row["role"], "transactions": int(row["transactions"]), "appending": int(row["appending"])}


def hidden_transaction_lines(data: dict[str, Any]) -> list[str]:
    """Nothing when every transaction was visible (the section is then left out)."""
    if not data["transactions"]:
        return []
    appending = data["appending"]
    if not appending:
        held = "none of them appends events"
    elif appending == 1:
        held = "1 of them appends events, so it holds projections back"
    else:
        held = f"{appending} of them append events, so they hold projections back"
    return [
        f"  {plural(data['transactions'], 'open transaction')} of other roles, whose age role {data['role']} "
        f"may not see; {held} (GRANT pg_read_all_stats TO {data['role']} to see them)"
    ]


def transaction_text(row: Any) -> str:
    where = f"pid {row['pid']} on {row['datname']} (user {row['usename']}, app {row['application_name'] or '-'})"
    started = row["xact_start"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    # Only an appender with a transaction id holds the fence projections read below.
    if row["has_xid"] and row["appending"]:
        effect = "appends events, so it holds projections back until it ends"
    else:
        effect = "appends no events, so it does not hold projections back"
    return f"{where}: {row['state']} for {age(float(row['age_seconds']))} (since {started}); {effect}"


@dataclass(frozen=True)
class DatabasePart:
    title: str
    key: str  # its name in `status --json`
    read: Callable[[AsyncConnection, Settings], Awaitable[Any]]
    render: Callable[[Any], list[str]]  # no lines: nothing to say, the section is left out
    when_unreachable: bool = True  # also shown (saying so) when the database cannot be reached


DATABASE_PARTS: list[DatabasePart] = [
    DatabasePart("Projections", "projections", projection_data, projection_text),
    DatabasePart("Outbox (chatbot tasks not yet confirmed by the broker)", "outbox", outbox_data, outbox_text),
    DatabasePart("Oldest open transaction", "oldest_transaction", transaction_data, transaction_text_lines),
    DatabasePart(
        "Transactions hidden from this role",
        "hidden_transactions",
        hidden_transaction_data,
        hidden_transaction_lines,
        when_unreachable=False,
    ),
]


async def database_part(settings: Settings) -> dict[str, Any]:
    """Each part's data, or {"error": ...} for a part that could not be read; `error` and `reachable`
    say whether the database could be reached at all."""
    engine = create_engine(settings.database_url, pool_size=1)
    result: dict[str, Any] = {"reachable": False, "error": None}
    try:
        async with engine.connect() as conn:
            # Autocommit: a failing part must not abort the others' transaction, and this command must
            # not itself hold a transaction open while it looks for the ones that do.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            result["reachable"] = True
            for part in DATABASE_PARTS:
                result[part.key] = await guarded(part, conn, settings)
    except Exception as exc:
        result.update(reachable=False, error=reason_for(exc, settings))
    finally:
        await engine.dispose()
    return result


def database_report_lines(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for part in DATABASE_PARTS:
        if not data["reachable"]:
            if part.when_unreachable:
                lines += [part.title, f"  {data['error']}"]
        elif isinstance(found := data[part.key], dict) and set(found) == {"could_not_read"}:
            lines += [part.title, f"  could not read: {found['could_not_read']}"]
        elif rendered := part.render(found):
            lines += [part.title, *rendered]
    return lines


async def database_lines(settings: Settings) -> list[str]:
    return database_report_lines(await database_part(settings))


async def guarded(part: DatabasePart, conn: AsyncConnection, settings: Settings) -> Any:
    try:
        return await part.read(conn, settings)
    except Exception as exc:
        log.warning("status.part_failed", part=part.key, error=describe(exc))
        return {"could_not_read": describe(exc)}


async def status_document(settings: Settings) -> dict[str, Any]:
    """`status --json`: the same report as one document; `ok` is false when the broker or the database
    cannot be reached (the command then exits 1)."""
    broker, database = await broker_part(settings), await database_part(settings)
    return {
        "at": datetime.now(UTC),
        "ok": broker["reachable"] and database["reachable"],
        "broker": broker,
        "database": database,
    }


def status_lines(document: dict[str, Any], settings: Settings) -> list[str]:
    at = document["at"].strftime("%Y-%m-%d %H:%M:%SZ")
    return [
        f"Sample Ledger status at {at}",
        *broker_report_lines(document["broker"], settings),
        *database_report_lines(document["database"]),
    ]


async def status_report(settings: Settings) -> list[str]:
    """One screen: consumers, dead letters, projection checkpoints and lag, outbox backlog, oldest open transaction."""
    return status_lines(await status_document(settings), settings)
