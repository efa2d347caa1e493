"""`ledger.ingest` consumers: sample crawl batches (creators and products come with their own issue)."""

from __future__ import annotations

from pydantic import ValidationError

from events.crawl import MAX_ROWS, CrawlBatchEnvelope
from events.envelope import CRAWL_BATCH_RECORDED, NewEvent
from handlers.intake import Delivery, Unprocessable, parse_json_object


def schema_detail(error: ValidationError) -> str:
    """Where and what, without echoing values (they may carry personal data)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5]]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def crawl_batch_event(delivery: Delivery) -> NewEvent:
    """Check the envelope and record the batch as received; rows are read by the samples projection."""
    body = parse_json_object(delivery)
    rows = body.get("rows")
    if isinstance(rows, list) and len(rows) > MAX_ROWS:
        raise Unprocessable("too_large", f"batch has {len(rows)} rows; the limit is {MAX_ROWS}")
    try:
        envelope = CrawlBatchEnvelope.model_validate(body)
    except ValidationError as exc:
        raise Unprocessable("invalid_schema", schema_detail(exc)) from None
    return NewEvent(
        stream_id=f"crawl_batch-{delivery.dedupe_key}",
        event_type=CRAWL_BATCH_RECORDED,
        data=body,
        metadata=delivery.metadata(envelope.source),
        dedupe_key=delivery.dedupe_key,
    )
