"""`ledger.ingest` builders: sample, creator and product crawl batches."""

from __future__ import annotations

from typing import Any

from events import streams
from events.catalog import split_personal
from events.catalog_events import CatalogBatchRecorded, CreatorBatchRecorded, ProductBatchRecorded
from events.crawl import MAX_ROWS
from events.recorded import NewEvent
from events.sample_events import CrawlBatchRecorded
from handlers.delivery import Delivery, Unprocessable, inbound_event, parse_json_object, validated


def _batch_body(delivery: Delivery) -> dict[str, Any]:
    body = parse_json_object(delivery)
    rows = body.get("rows")
    if isinstance(rows, list) and len(rows) > MAX_ROWS:
        raise Unprocessable("too_large", f"batch has {len(rows)} rows; the limit is {MAX_ROWS}")
    return body


def crawl_batch_event(delivery: Delivery) -> NewEvent:
    """Check the envelope and record the batch as received; rows are read by the samples projection."""
    batch = validated(CrawlBatchRecorded, _batch_body(delivery))
    stream = streams.inbound_message("crawl_batch", delivery.dedupe_key)
    return inbound_event(delivery, stream, batch, batch.source)


def creator_batch_event(delivery: Delivery) -> NewEvent:
    """Creators batches carry WhatsApp numbers and e-mails: those go to the event's personal column."""
    body = _batch_body(delivery)
    validated(CreatorBatchRecorded, body)  # the envelope as sent must hold, before anything is removed
    rows, personal = split_personal(list(body["rows"]))
    batch = validated(CreatorBatchRecorded, {**body, "rows": rows})
    stream = streams.inbound_message("creator_batch", delivery.dedupe_key)
    return inbound_event(delivery, stream, batch, batch.source, personal=personal)


def product_batch_event(delivery: Delivery) -> NewEvent:
    batch: CatalogBatchRecorded = validated(ProductBatchRecorded, _batch_body(delivery))
    return inbound_event(delivery, streams.inbound_message("product_batch", delivery.dedupe_key), batch, batch.source)
