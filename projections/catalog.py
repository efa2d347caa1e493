"""The catalog read model: `projections.creators`, `projections.products`, `projections.catalog_batches`.

A crawl that lacks a value never erases a known one (the old system wiped WhatsApp numbers that
way): every column is `coalesce(new, known)`. Opt-outs apply in the order of their `at`, so a late
opt-in does not undo a newer opt-out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from events.catalog import CreatorRow, ProductRow, read_creator_row, read_product_row
from events.catalog_events import (
    CatalogBatchRecorded,
    CreatorBatchRecorded,
    CreatorMessagingChanged,
    ProductBatchRecorded,
)
from events.crawl import RejectedRow
from events.recorded import NewEvent, RecordedEvent
from projections.opt_outs import supersedes
from projections.sample_inputs import as_utc

_CREATOR_FACTS = ("platform_creator_username", "platform_creator_display_name", "region", "followers", "whatsapp",
                  "email")  # fmt: skip
_PRODUCT_FACTS = ("product_name", "platform_campaign_id", "platform_campaign_name", "region")


def _upsert(table: str, key: str, facts: Sequence[str]) -> Any:
    columns = (key, *facts, "first_seen_at", "last_seen_at")
    updates = [f"{c} = coalesce(excluded.{c}, t.{c})" for c in facts]
    updates += ["first_seen_at = least(t.first_seen_at, excluded.first_seen_at)",
                "last_seen_at = greatest(t.last_seen_at, excluded.last_seen_at)"]  # fmt: skip
    return text(
        f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(updates)}"
    )


_UPSERT_CREATOR = _upsert("projections.creators", "platform_creator_id", _CREATOR_FACTS)
_UPSERT_PRODUCT = _upsert("projections.products", "platform_product_id", _PRODUCT_FACTS)
_LOAD_MESSAGING = text("""
    SELECT platform_creator_id, opted_out, opted_out_reason, messaging_changed_at AS at FROM projections.creators
    WHERE platform_creator_id = ANY(CAST(:ids AS text[])) AND messaging_changed_at IS NOT NULL
""")
_UPSERT_MESSAGING = text("""
    INSERT INTO projections.creators AS t
        (platform_creator_id, opted_out, opted_out_reason, messaging_changed_at, first_seen_at, last_seen_at)
    VALUES (:platform_creator_id, :opted_out, :opted_out_reason, :at, :first_seen_at, :last_seen_at)
    ON CONFLICT (platform_creator_id) DO UPDATE SET  -- only changes that supersede (opt_outs.supersedes)
        opted_out = excluded.opted_out, opted_out_reason = excluded.opted_out_reason,
        messaging_changed_at = excluded.messaging_changed_at,
        first_seen_at = least(t.first_seen_at, excluded.first_seen_at),
        last_seen_at = greatest(t.last_seen_at, excluded.last_seen_at)
""")
_INSERT_BATCH = text("""
    INSERT INTO projections.catalog_batches
        (message_id, event_position, kind, source, received_at, rows_total, rows_rejected, rejections)
    VALUES (:message_id, :event_position, :kind, :source, :received_at, :rows_total, :rows_rejected,
            CAST(:rejections AS jsonb))
""")


def _merge(rows: dict[str, dict[str, Any]], key: str, row: dict[str, Any]) -> None:
    """Within a page one statement cannot touch a key twice: later known values win, unknowns keep."""
    earlier = rows.get(row[key])
    if earlier is not None:
        row = {k: row[k] if row[k] is not None else earlier[k] for k in row}
        row["first_seen_at"] = min(earlier["first_seen_at"], row["first_seen_at"])
    rows[row[key]] = row


class CatalogProjection:
    name = "catalog"
    event_types = (CreatorBatchRecorded.type_name, ProductBatchRecorded.type_name, CreatorMessagingChanged.type_name)
    derives_events = False
    tables = ("projections.creators", "projections.products", "projections.catalog_batches")

    async def apply(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> Sequence[NewEvent]:
        creators: dict[str, dict[str, Any]] = {}
        products: dict[str, dict[str, Any]] = {}
        messaging: list[dict[str, Any]] = []
        batches: list[dict[str, Any]] = []
        for event in events:
            seen = event.received_at
            batch = event.event
            if isinstance(batch, CreatorMessagingChanged):
                messaging.append(_messaging_row(batch, seen))
                continue
            assert isinstance(batch, CatalogBatchRecorded)
            personal = (event.personal or {}).get("rows", {})
            rejected: list[RejectedRow] = []
            for index, raw in enumerate(batch.rows):
                read = (read_creator_row(index, raw, personal.get(str(index), {}))
                        if isinstance(batch, CreatorBatchRecorded) else read_product_row(index, raw))  # fmt: skip
                if isinstance(read, RejectedRow):
                    rejected.append(read)
                elif isinstance(read, CreatorRow):
                    _merge(creators, "platform_creator_id", _facts(read, _CREATOR_FACTS, "platform_creator_id", seen))
                else:
                    _merge(products, "platform_product_id", _facts(read, _PRODUCT_FACTS, "platform_product_id", seen))
            batches.append(_batch_row(event, batch, rejected))
        if creators:
            await conn.execute(_UPSERT_CREATOR, list(creators.values()))
        if products:
            await conn.execute(_UPSERT_PRODUCT, list(products.values()))
        if messaging:
            await conn.execute(_UPSERT_MESSAGING, await _superseding(conn, messaging))
        if batches:
            await conn.execute(_INSERT_BATCH, batches)
        return ()


async def _superseding(conn: AsyncConnection, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per creator, the change that stands after this page, folded in log order over the known one; a
    change that does not supersede still counts as a sighting of the creator."""
    ids = sorted({c["platform_creator_id"] for c in changes})
    rows = (await conn.execute(_LOAD_MESSAGING, {"ids": ids})).mappings().all()
    standing: dict[str, dict[str, Any]] = {r["platform_creator_id"]: dict(r) for r in rows}
    for change in changes:
        creator = change["platform_creator_id"]
        known = standing.get(creator)
        if known is None or supersedes(change["at"], known["at"]):
            standing[creator] = {**(known or {}), **{k: change[k] for k in ("platform_creator_id", "opted_out",
                                                                                "opted_out_reason", "at")}}  # fmt: skip
        row = standing[creator]
        row["first_seen_at"] = min(row.get("first_seen_at") or change["seen_at"], change["seen_at"])
        row["last_seen_at"] = max(row.get("last_seen_at") or change["seen_at"], change["seen_at"])
    return [row for row in standing.values() if "first_seen_at" in row]


def _facts(row: CreatorRow | ProductRow, names: Sequence[str], key: str, seen: datetime) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in (key, *names)}
    return {**values, "first_seen_at": seen, "last_seen_at": seen}


def _messaging_row(change: CreatorMessagingChanged, seen: datetime) -> dict[str, Any]:
    return {"platform_creator_id": change.platform_creator_id, "opted_out": change.opted_out,
            "opted_out_reason": change.reason, "at": as_utc(change.at), "seen_at": seen}  # fmt: skip


def _batch_row(event: RecordedEvent, batch: CatalogBatchRecorded, rejected: list[RejectedRow]) -> dict[str, Any]:
    return {
        "message_id": event.metadata.get("message_id") or event.stream_id,
        "event_position": event.position,
        "kind": batch.kind,
        "source": batch.source,
        "received_at": event.received_at,
        "rows_total": len(batch.rows),
        "rows_rejected": len(rejected),
        "rejections": json.dumps([{"row": r.index, "reason": r.reason} for r in rejected]),
    }
