"""What the demo shows once the service has taken its messages: the rows its batches produced, read
from the tables an analyst queries, limited to the demo's own samples so a shared database stays
readable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

BATCHES = text("""
    SELECT message_id, rows_total, rows_rejected, samples_new, samples_changed
    FROM projections.crawl_batches WHERE message_id = ANY(:batch_ids) ORDER BY message_id
""")
STATUSES = text("""
    SELECT status, count(*) FROM projections.samples WHERE sample_id = ANY(:sample_ids)
    GROUP BY status ORDER BY count(*) DESC, status
""")
# Every demo sample with its id (the key `sample-ledger explain` takes), grouped by status.
SAMPLE_ROWS = text("""
    SELECT sample_id, coalesce(platform_creator_username, platform_creator_id),
           coalesce(product_name, 'product ' || platform_product_id), status, content_count
    FROM projections.samples WHERE sample_id = ANY(:sample_ids)
    ORDER BY status, content_count DESC NULLS LAST, platform_creator_username, sample_id
""")
# The sample with the most to tell: chatbot schedules first, then status changes.
MOST_TO_EXPLAIN = text("""
    SELECT s.sample_id FROM projections.samples s WHERE s.sample_id = ANY(:sample_ids)
    ORDER BY (SELECT count(*) FROM projections.chatbot_schedules c WHERE c.sample_id = s.sample_id) DESC,
             (SELECT count(*) FROM projections.sample_status_history h WHERE h.sample_id = s.sample_id) DESC,
             s.sample_id
    LIMIT 1
""")
# Sample rows the demo prints before it says how many more there are.
SHOWN_SAMPLES = 20
COUNTS = text("""
    SELECT (SELECT count(*) FROM projections.sample_contents WHERE sample_id = ANY(:sample_ids)),
           (SELECT count(*) FROM projections.sample_status_history WHERE sample_id = ANY(:sample_ids))
""")
NEXT_DUE = text("""
    SELECT min(due_at) FROM projections.chatbot_schedules WHERE sample_id = ANY(:sample_ids) AND state = 'pending'
""")
SCHEDULES = text("""
    SELECT scenario || ' ' || state, count(*) FROM projections.chatbot_schedules
    WHERE sample_id = ANY(:sample_ids) GROUP BY 1 ORDER BY 1
""")
TASKS = text("""
    SELECT scenario || ' ' || coalesce(outcome, CASE WHEN published_at IS NULL THEN 'waiting' ELSE 'published' END),
           count(*)
    FROM projections.chatbot_tasks WHERE sample_id = ANY(:sample_ids) GROUP BY 1 ORDER BY 1
""")


def _tally(pairs: Sequence[Any]) -> str:
    return ", ".join(f"{name} {count}" for name, count in pairs)


def _cut(value: str | None, width: int) -> str:
    shown = value or "-"
    return shown if len(shown) <= width else shown[: width - 1] + "…"


async def _batch_lines(conn: AsyncConnection, batch_ids: list[str]) -> list[str]:
    batches = (await conn.execute(BATCHES, {"batch_ids": batch_ids})).all()
    lines = [f"projections.crawl_batches: {len(batches)} demo batch(es)"]
    for message_id, total, rejected, new, changed in batches:
        lines.append(f"  {message_id:<40} {total} row(s): {rejected} rejected, {new} new sample(s), {changed} changed")
    return lines


async def _sample_lines(conn: AsyncConnection, ids: dict[str, list[str]]) -> list[str]:
    statuses = (await conn.execute(STATUSES, ids)).all()
    total = sum(count for _, count in statuses)
    lines = [f"projections.samples: {total} sample(s) ({_tally(statuses)})"]
    lines.append(f"  {'sample id':<36} {'creator':<22} {'product':<32} {'status':<16} contents")
    rows = (await conn.execute(SAMPLE_ROWS, ids)).all()
    for sample_id, creator, product, status, contents in rows[:SHOWN_SAMPLES]:
        shown = "unknown" if contents is None else contents  # null: no collector has opened the drawer yet
        lines.append(f"  {sample_id:<36} {_cut(creator, 22):<22} {_cut(product, 32):<32} {status or '-':<16} {shown}")
    if len(rows) > SHOWN_SAMPLES:
        lines.append(f"  and {len(rows) - SHOWN_SAMPLES} more")
    return lines


async def sample_to_explain(conn: AsyncConnection, sample_ids: list[str]) -> str | None:
    """The demo sample with the most to tell (`sample-ledger explain` suggests it), None without any."""
    found = (await conn.execute(MOST_TO_EXPLAIN, {"sample_ids": sample_ids})).scalar_one_or_none()
    return None if found is None else str(found)


def _when_due(due: datetime) -> str:
    # Quiet hours and the daily cap defer tasks; saying so saves a newcomer a hunt for a bug.
    if due <= datetime.now(UTC):
        return "one is due now: it goes out in seconds unless CHATBOT_QUIET_HOURS or the daily cap defer it"
    return f"the next is due {due.astimezone(UTC):%Y-%m-%d %H:%M} UTC (quiet hours and the daily cap defer tasks)"


async def _chatbot_lines(conn: AsyncConnection, ids: dict[str, list[str]]) -> list[str]:
    schedules = (await conn.execute(SCHEDULES, ids)).all()
    tasks = (await conn.execute(TASKS, ids)).all()
    lines = [f"projections.chatbot_schedules: {_tally(schedules) or 'none'}"]
    if tasks:
        lines.append(f"projections.chatbot_tasks: {_tally(tasks)}")
    elif (due := (await conn.execute(NEXT_DUE, ids)).scalar_one()) is not None:
        lines.append(f"projections.chatbot_tasks: none yet; {_when_due(due)}")
    return lines


async def summary_lines(conn: AsyncConnection, batch_ids: list[str], sample_ids: list[str]) -> list[str]:
    """A screenful: batches, samples by status with one row per status, contents, history, chatbot."""
    ids = {"sample_ids": sample_ids}
    contents, changes = (await conn.execute(COUNTS, ids)).one()
    return [
        *await _batch_lines(conn, batch_ids),
        *await _sample_lines(conn, ids),
        f"projections.sample_contents: {contents} video(s)/LIVE(s) seen",
        f"projections.sample_status_history: {changes} status change(s)",
        *await _chatbot_lines(conn, ids),
    ]
