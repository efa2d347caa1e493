"""SQL for the samples read model: load states in one query, write every change set-based."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from events.statuses import Status
from projections.bulk_sql import insert_from_rows, rows_param
from projections.sample_replay import Sighting
from projections.sample_state import SampleState, moment_text

STATE_COLUMNS = tuple(f.name for f in fields(SampleState))

_LOAD = text(f"SELECT {', '.join(STATE_COLUMNS)} FROM projections.samples WHERE sample_id = ANY(CAST(:ids AS text[]))")


_WRITTEN_COLUMNS = (*STATE_COLUMNS, "fingerprint", "last_event_position")
_UPSERT = text(
    insert_from_rows("projections.samples", _WRITTEN_COLUMNS)
    + " ON CONFLICT (sample_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _WRITTEN_COLUMNS if c != "sample_id")
)

CONTENT_COLUMNS = ("sample_id", "content_key", "content_type", "title", "posted_at", "view_count", "like_count",
                   "comment_count", "order_count", "order_amount", "first_seen_at", "last_seen_at")  # fmt: skip
_UPSERT_CONTENT = text(
    insert_from_rows("projections.sample_contents", CONTENT_COLUMNS)
    + """
    ON CONFLICT (sample_id, content_key) DO UPDATE SET  -- merged with the stored row already (merge_sightings)
        view_count = excluded.view_count, like_count = excluded.like_count,
        comment_count = excluded.comment_count, order_count = excluded.order_count,
        order_amount = excluded.order_amount, first_seen_at = excluded.first_seen_at,
        last_seen_at = excluded.last_seen_at
"""
)
_LOAD_CONTENTS = text(f"""
    SELECT {", ".join(CONTENT_COLUMNS)} FROM projections.sample_contents
    WHERE (sample_id, content_key) IN (
        SELECT s, k FROM unnest(CAST(:sample_ids AS text[]), CAST(:keys AS text[])) AS u(s, k))
""")

HISTORY_COLUMNS = ("event_position", "sample_id", "seq", "from_status", "to_status", "observed_at", "source",
                   "regression")  # fmt: skip
_INSERT_HISTORY = text(insert_from_rows("projections.sample_status_history", HISTORY_COLUMNS))

_INSERT_BATCH = text("""
    INSERT INTO projections.crawl_batches
        (message_id, event_position, source, received_at, content_expanded, rows_total, rows_rejected,
         rejections, samples_new, samples_changed)
    VALUES (:message_id, :event_position, :source, :received_at, :content_expanded, :rows_total,
            :rows_rejected, CAST(:rejections AS jsonb), :samples_new, :samples_changed)
""")


async def load_states(conn: AsyncConnection, sample_ids: Iterable[str]) -> dict[str, SampleState]:
    ids = sorted(set(sample_ids))
    if not ids:
        return {}
    rows = (await conn.execute(_LOAD, {"ids": ids})).all()  # tuples: SQLAlchemy's mappings cost more than the rows
    return {s.sample_id: s for s in map(_state, rows)}


def _state(row: Sequence[Any]) -> SampleState:
    values = dict(zip(STATE_COLUMNS, row, strict=True))
    if values["status"] is not None:
        values["status"] = Status(values["status"])
    times = values["fact_observed_at"]
    times = json.loads(times) if isinstance(times, str) else times
    values["fact_observed_at"] = {name: _moment(moment) for name, moment in times.items()}
    return SampleState(**values)


def _moment(text: str) -> datetime:
    """A time as `rows_param` stored it in a jsonb value ('2026-04-20 03:15:42+00:00')."""
    return datetime.fromisoformat(text)


async def upsert_samples(conn: AsyncConnection, states: Sequence[tuple[SampleState, int]]) -> None:
    """Write whole rows: the state was computed from the loaded row, so every column is already merged."""
    if states:
        await conn.execute(_UPSERT, rows_param([_sample_params(state, position) for state, position in states]))


def _sample_params(state: SampleState, position: int) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies every value, which cost a tenth of a page's fold.
    params = {column: getattr(state, column) for column in STATE_COLUMNS}
    params["status"] = state.status.value if state.status else None
    params["fact_observed_at"] = {name: moment_text(moment) for name, moment in state.fact_observed_at.items()}
    params["fingerprint"] = state.fingerprint()
    params["last_event_position"] = position
    return params


async def load_contents(
    conn: AsyncConnection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored rows of the (sample, content key) pairs a page saw, in one query."""
    pairs = sorted(set(keys))
    if not pairs:
        return {}
    params = {"sample_ids": [s for s, _ in pairs], "keys": [k for _, k in pairs]}
    rows = (await conn.execute(_LOAD_CONTENTS, params)).mappings().all()
    return {(r["sample_id"], r["content_key"]): dict(r) for r in rows}


async def upsert_contents(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_UPSERT_CONTENT, rows_param(rows))


async def insert_history(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_HISTORY, rows_param(rows))


_DELETE_HISTORY = text("DELETE FROM projections.sample_status_history WHERE sample_id = ANY(CAST(:ids AS text[]))")


async def delete_history(conn: AsyncConnection, sample_ids: Sequence[str]) -> None:
    """Before a late observation's replayed history is written in place of the old one."""
    if sample_ids:
        await conn.execute(_DELETE_HISTORY, {"ids": list(sample_ids)})


SIGHTING_COLUMNS = ("sample_id", "event_position", "observed_at", "source", "status", "cancel_reason",
                    "content_count")  # fmt: skip
# A sighting is recorded once per (sample, event); folding an event again (a retried page) adds nothing.
_INSERT_SIGHTINGS = text(insert_from_rows("projections.sample_sightings", SIGHTING_COLUMNS) + " ON CONFLICT DO NOTHING")
_LOAD_SIGHTINGS = text(f"""
    SELECT {", ".join(SIGHTING_COLUMNS)} FROM projections.sample_sightings
    WHERE sample_id = ANY(CAST(:ids AS text[])) ORDER BY sample_id, observed_at, event_position
""")
_SIGHTINGS_AFTER = text("SELECT after_position FROM projections.sightings_since")


async def insert_sightings(conn: AsyncConnection, sightings: Sequence[tuple[str, Sighting]]) -> None:
    if sightings:
        await conn.execute(_INSERT_SIGHTINGS, rows_param([{
            "sample_id": sample_id, "event_position": s.event_position, "observed_at": s.observed_at,
            "source": s.source, "status": s.status.value if s.status else None, "cancel_reason": s.cancel_reason,
            "content_count": s.content_count,
        } for sample_id, s in sightings]))  # fmt: skip


async def load_sightings(conn: AsyncConnection, sample_ids: Iterable[str]) -> dict[str, list[Sighting]]:
    """Every recorded sighting of these samples, each sample's in time order (one query)."""
    timelines: dict[str, list[Sighting]] = {sid: [] for sid in sample_ids}
    if timelines:
        for row in (await conn.execute(_LOAD_SIGHTINGS, {"ids": sorted(timelines)})).mappings():
            timelines[row["sample_id"]].append(Sighting(
                row["event_position"], row["observed_at"], row["source"],
                Status(row["status"]) if row["status"] else None, row["cancel_reason"], row["content_count"],
            ))  # fmt: skip
    return timelines


async def sightings_after(conn: AsyncConnection) -> int:
    """The last event position before sightings were kept (migration 0008)."""
    return int((await conn.execute(_SIGHTINGS_AFTER)).scalar_one())


async def insert_crawl_batches(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_BATCH, list(rows))


def _joining(table: str, key: str) -> str:
    """SQL: the rows of `table` (by its unique `key`) that a webhook joins, by application id or by
    (product id, creator id). One index scan for each join key: written as one WHERE with an OR of the
    two, PostgreSQL read the whole table for every page with a webhook in it (12 ms at 20,000 samples,
    growing with every sample)."""
    return f"""{key} IN (
        SELECT {key} FROM {table} WHERE application_id = ANY(CAST(:apps AS text[]))
        UNION ALL
        SELECT t.{key} FROM {table} AS t
        JOIN unnest(CAST(:pids AS text[]), CAST(:cids AS text[])) AS u(p, c)
            ON t.platform_product_id = u.p AND t.platform_creator_id = u.c)"""


_LOAD_JOINED = text(
    f"SELECT {', '.join(STATE_COLUMNS)} FROM projections.samples WHERE {_joining('projections.samples', 'sample_id')}"
)
_LOAD_WAITING = text(
    "SELECT event_position, application_id, platform_product_id, platform_creator_id, status, cancel_reason, "
    f"observed_at FROM projections.pending_webhooks WHERE {_joining('projections.pending_webhooks', 'event_position')}"
)
_INSERT_WEBHOOK = text("""
    INSERT INTO projections.webhooks
        (event_position, notification_id, type, shop_id, creator_open_id, occurred_at, received_at,
         signature_valid, application_id, new_status, disposition, sample_id)
    VALUES (:event_position, :notification_id, :type, :shop_id, :creator_open_id, :occurred_at, :received_at,
            :signature_valid, :application_id, :new_status, :disposition, :sample_id)
""")
_UPDATE_WEBHOOK = text("""
    UPDATE projections.webhooks SET disposition = :disposition, sample_id = :sample_id
    WHERE event_position = :event_position
""")
_INSERT_WAITING = text("""
    INSERT INTO projections.pending_webhooks
        (event_position, application_id, platform_product_id, platform_creator_id, status, cancel_reason,
         observed_at)
    VALUES (:event_position, :application_id, :platform_product_id, :platform_creator_id, :status,
            :cancel_reason, :observed_at)
""")
_DELETE_WAITING = text(
    "DELETE FROM projections.pending_webhooks WHERE event_position = ANY(CAST(:positions AS bigint[]))"
)


def _join_params(application_ids: Iterable[str], pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    pair_list = sorted(set(pairs))
    return {"apps": sorted(set(application_ids)), "pids": [p for p, _ in pair_list], "cids": [c for _, c in pair_list]}


async def load_joined_states(
    conn: AsyncConnection, application_ids: Iterable[str], pairs: Iterable[tuple[str, str]]
) -> dict[str, SampleState]:
    """Samples a webhook may join: by application id, or by (product id, creator id)."""
    params = _join_params(application_ids, pairs)
    if not params["apps"] and not params["pids"]:
        return {}
    return {s.sample_id: s for s in map(_state, (await conn.execute(_LOAD_JOINED, params)).all())}


async def load_waiting(
    conn: AsyncConnection, application_ids: Iterable[str], pairs: Iterable[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Webhooks waiting for a sample with one of these join keys."""
    params = _join_params(application_ids, pairs)
    if not params["apps"] and not params["pids"]:
        return []
    return [dict(r) for r in (await conn.execute(_LOAD_WAITING, params)).mappings().all()]


async def insert_webhooks(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_WEBHOOK, list(rows))


async def update_webhooks(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_UPDATE_WEBHOOK, list(rows))


async def insert_waiting(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_WAITING, list(rows))


async def delete_waiting(conn: AsyncConnection, positions: Sequence[int]) -> None:
    if positions:
        await conn.execute(_DELETE_WAITING, {"positions": list(positions)})
