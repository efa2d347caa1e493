"""`ledger.ingest` consumers: sample, creator and product crawl batches."""

from __future__ import annotations

from pydantic import ValidationError

from events.catalog import split_personal
from events.crawl import MAX_ROWS, CrawlBatchEnvelope
from events.envelope import CRAWL_BATCH_RECORDED, CREATOR_BATCH_RECORDED, PRODUCT_BATCH_RECORDED, NewEvent
from events.state import CatalogBatchEnvelope
from handlers.intake import Delivery, EventBuilder, Unprocessable, inbound_event, parse_json_object, schema_detail


def _batch(
    delivery: Delivery, envelope_model: type[CrawlBatchEnvelope | CatalogBatchEnvelope]
) -> tuple[dict[str, object], str]:
    body = parse_json_object(delivery)
    rows = body.get("rows")
    if isinstance(rows, list) and len(rows) > MAX_ROWS:
        raise Unprocessable("too_large", f"batch has {len(rows)} rows; the limit is {MAX_ROWS}")
    try:
        envelope = envelope_model.model_validate(body)
    except ValidationError as exc:
        raise Unprocessable("invalid_schema", schema_detail(exc)) from None
    return body, envelope.source


def crawl_batch_event(delivery: Delivery) -> NewEvent:
    """Check the envelope and record the batch as received; rows are read by the samples projection."""
    body, source = _batch(delivery, CrawlBatchEnvelope)
    return inbound_event(delivery, f"crawl_batch-{delivery.dedupe_key}", CRAWL_BATCH_RECORDED, body, source)


def creator_batch_event(delivery: Delivery) -> NewEvent:
    """Creators batches carry WhatsApp numbers and e-mails: those go to the event's personal column."""
    body, source = _batch(delivery, CatalogBatchEnvelope)
    rows, personal = split_personal(list(body["rows"]))  # type: ignore[call-overload]
    return inbound_event(
        delivery,
        f"creator_batch-{delivery.dedupe_key}",
        CREATOR_BATCH_RECORDED,
        {**body, "rows": rows},
        source,
        personal=personal,
    )


def product_batch_event(delivery: Delivery) -> NewEvent:
    body, source = _batch(delivery, CatalogBatchEnvelope)
    return inbound_event(delivery, f"product_batch-{delivery.dedupe_key}", PRODUCT_BATCH_RECORDED, body, source)


INGEST_BUILDERS: dict[str, EventBuilder] = {
    "samples.crawled": crawl_batch_event,
    "creators.crawled": creator_batch_event,
    "products.crawled": product_batch_event,
}
