"""Builders turn a delivery into the event it records, or refuse it with a dead-letter reason (CONTRACT.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from events.crawl import MAX_ROWS
from events.webhooks import expected_signature
from handlers.crawl_batches import crawl_batch_event, creator_batch_event, product_batch_event
from handlers.delivery import EventBuilder, Unprocessable
from handlers.reports import chatbot_result_event, creator_messaging_event, status_report_event
from handlers.webhooks import webhook_event_builder
from tests.support import example
from tests.unit.events_in_memory import delivery

CREATORS: dict[str, Any] = {
    "source": "creator_crawler",
    "operatorId": "op-7",
    "crawlerVersion": "2.4",  # unknown to the contract: kept
    "rows": [
        {"platformCreatorId": "7491112223334445556", "whatsapp": "+52 55 1234 5678", "email": "vale@example.com",
         "followers": "12.4K"},
        {"platform_creator_id": "7492223334445556667", "platformCreatorUsername": "techconbeto"},
    ],
}  # fmt: skip
PRODUCTS: dict[str, Any] = {
    "source": "product_crawler",
    "rows": [{"platformProductId": "1729600011122233344", "productName": "ANC", "shelf": "B2"}],
    "traceId": "t-1",
}
REPORT: dict[str, Any] = {
    "region": "MX", "platformProductId": "1729700000000000011", "platformCreatorId": "7491112223334445556",
    "status": "Shipped", "observedAt": "2026-05-02T10:00:00Z", "source": "seller_monitor", "note": "kept",
}  # fmt: skip
RESULT: dict[str, Any] = {
    "taskId": "task-1", "outcome": "failed", "reason": "chat closed", "retryable": True, "at": "2026-05-02T10:00:00Z",
    "workerHost": "w-3",
}  # fmt: skip
MESSAGING: dict[str, Any] = {
    "platformCreatorId": "7491112223334445556",
    "optedOut": True,
    "reason": "asked",
    "at": "2026-05-02T10:00:00Z",
    "ticket": 42,
}
WEBHOOK = b'{"type":3,"shop_id":"7495123456789012345","timestamp":1736935200,"data":{"id":12345678901234567890}}'
APP_KEY, APP_SECRET = "demo_key", "demo_secret"

# (builder, routing key, a valid body, event type, stream id for message id "msg-1", source in the metadata)
CASES: list[tuple[EventBuilder, str, dict[str, Any], str, str, str]] = [
    (crawl_batch_event, "samples.crawled", example("9_2"), "sample.crawl_batch_recorded",
     "crawl_batch-samples.crawled/msg-1", "portal_tiktok_sample_crawler"),
    (creator_batch_event, "creators.crawled", CREATORS, "creator.crawl_batch_recorded",
     "creator_batch-creators.crawled/msg-1", "creator_crawler"),
    (product_batch_event, "products.crawled", PRODUCTS, "product.crawl_batch_recorded",
     "product_batch-products.crawled/msg-1", "product_crawler"),
    (status_report_event, "sample.status_reported", REPORT, "sample.status_reported",
     "status_report-sample.status_reported/msg-1", "seller_monitor"),
    (chatbot_result_event, "chatbot.result", RESULT, "chatbot.result_reported",
     "chatbot_task-task-1", "chatbot_worker"),
    (creator_messaging_event, "creator.messaging", MESSAGING, "creator.messaging_changed",
     "creator-7491112223334445556", "operator"),
]  # fmt: skip
IDS = [case[3] for case in CASES]


@pytest.mark.parametrize(("build", "routing_key", "body", "event_type", "stream_id", "source"), CASES, ids=IDS)
def test_a_valid_body_is_recorded_with_its_type_stream_dedupe_key_and_metadata(
    build: EventBuilder, routing_key: str, body: dict[str, Any], event_type: str, stream_id: str, source: str
) -> None:
    event = build(delivery(body, routing_key))
    assert (event.event_type, event.stream_id, event.dedupe_key) == (event_type, stream_id, f"{routing_key}/msg-1")
    assert event.metadata == {
        "message_id": "msg-1", "correlation_id": "corr-1", "causation_id": None, "source": source,
        "received_at": "2026-05-01T12:00:00+00:00", "exchange": "ledger.ingest", "routing_key": routing_key,
    }  # fmt: skip


@pytest.mark.parametrize(("build", "routing_key", "body"), [c[:3] for c in CASES if c[0] is not creator_batch_event])
def test_the_data_is_the_body_exactly_as_received_unknown_keys_included(
    build: EventBuilder, routing_key: str, body: dict[str, Any]
) -> None:
    event = build(delivery(body, routing_key))
    assert event.data == body
    assert event.personal is None


@pytest.mark.parametrize(("build", "routing_key", "body"), [c[:3] for c in CASES], ids=IDS)
def test_without_a_message_id_the_dedupe_key_is_a_hash_of_routing_key_and_body(
    build: EventBuilder, routing_key: str, body: dict[str, Any]
) -> None:
    raw = json.dumps(body).encode()
    digest = hashlib.sha256(routing_key.encode() + b"\n" + raw).hexdigest()
    event = build(delivery(raw, routing_key, message_id=None))
    assert event.dedupe_key == f"{routing_key}/sha256:{digest}"
    assert event.metadata["message_id"] == f"sha256:{digest}"
    assert build(delivery(raw, routing_key, message_id=None)).dedupe_key == event.dedupe_key  # republished: same key
    assert build(delivery(raw + b" ", routing_key, message_id=None)).dedupe_key != event.dedupe_key


def test_creator_batches_keep_whatsapp_and_email_out_of_the_data() -> None:
    event = creator_batch_event(delivery(CREATORS, "creators.crawled"))
    assert event.data == {**CREATORS, "rows": [
        {"platformCreatorId": "7491112223334445556", "followers": "12.4K"},
        {"platform_creator_id": "7492223334445556667", "platformCreatorUsername": "techconbeto"},
    ]}  # fmt: skip
    assert event.personal == {"rows": {"0": {"whatsapp": "+52 55 1234 5678", "email": "vale@example.com"}}}
    assert "+52 55 1234 5678" not in json.dumps(event.data)


@pytest.mark.parametrize(("build", "routing_key"), [c[:2] for c in CASES], ids=IDS)
@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b""])
def test_a_body_that_is_not_json_is_invalid_json(build: EventBuilder, routing_key: str, raw: bytes) -> None:
    with pytest.raises(Unprocessable) as refused:
        build(delivery(raw, routing_key))
    assert refused.value.reason == "invalid_json"


@pytest.mark.parametrize(("build", "routing_key", "body"), [c[:3] for c in CASES], ids=IDS)
@pytest.mark.parametrize("missing", [0, -1])
def test_a_missing_required_field_is_invalid_schema_naming_it(
    build: EventBuilder, routing_key: str, body: dict[str, Any], missing: int
) -> None:
    required = {"samples.crawled": ["source", "rows"], "creators.crawled": ["source", "rows"],
                "products.crawled": ["source", "rows"], "sample.status_reported": ["region", "observedAt"],
                "chatbot.result": ["taskId", "at"], "creator.messaging": ["platformCreatorId", "optedOut"]}  # fmt: skip
    field = required[routing_key][missing]
    with pytest.raises(Unprocessable) as refused:
        build(delivery({k: v for k, v in body.items() if k != field}, routing_key))
    assert refused.value.reason == "invalid_schema"
    assert f"{field}: Field required" in refused.value.detail


@pytest.mark.parametrize(
    ("build", "routing_key", "body", "field", "value"),
    [
        (crawl_batch_event, "samples.crawled", example("9_2"), "rows", "+52 55 9999 0000"),
        (creator_batch_event, "creators.crawled", CREATORS, "operatorId", {"email": "secret@example.com"}),
        (product_batch_event, "products.crawled", PRODUCTS, "source", ["ana@example.com"]),
        (status_report_event, "sample.status_reported", REPORT, "observedAt", "the day Ana called +52 55 1"),
        (chatbot_result_event, "chatbot.result", RESULT, "retryable", "whatsapp +52 55 1"),
        (creator_messaging_event, "creator.messaging", MESSAGING, "at", "ana@example.com"),
    ],
)
def test_a_field_of_the_wrong_type_is_invalid_schema_naming_it_without_echoing_the_value(
    build: EventBuilder, routing_key: str, body: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(Unprocessable) as refused:
        build(delivery({**body, field: value}, routing_key))
    assert refused.value.reason == "invalid_schema"
    assert refused.value.detail.startswith(f"{field}: ")
    for fragment in ("+52", "@example.com", "Ana"):
        assert fragment not in refused.value.detail


@pytest.mark.parametrize(("build", "routing_key"), [c[:2] for c in CASES], ids=IDS)
def test_a_body_that_is_not_an_object_is_invalid_schema(build: EventBuilder, routing_key: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        build(delivery([{"source": "s"}], routing_key))
    assert (refused.value.reason, refused.value.detail) == ("invalid_schema", "body must be a JSON object, got list")


@pytest.mark.parametrize(
    ("build", "routing_key", "body"),
    [(crawl_batch_event, "samples.crawled", example("9_2")), (creator_batch_event, "creators.crawled", CREATORS),
     (product_batch_event, "products.crawled", PRODUCTS)],
)  # fmt: skip
def test_a_batch_over_the_row_limit_is_too_large_and_at_the_limit_is_recorded(
    build: EventBuilder, routing_key: str, body: dict[str, Any]
) -> None:
    rows = [{"platformCreatorId": str(i), "platformProductId": str(i)} for i in range(MAX_ROWS + 1)]
    assert len(build(delivery({**body, "rows": rows[:MAX_ROWS]}, routing_key)).data["rows"]) == MAX_ROWS
    with pytest.raises(Unprocessable) as refused:
        build(delivery({**body, "rows": rows}, routing_key))
    assert refused.value.reason == "too_large"
    assert f"{MAX_ROWS + 1} rows" in refused.value.detail


def test_a_webhook_is_recorded_by_its_notification_id_with_its_exact_body() -> None:
    body = b'{"type":56,"tts_notification_id":"7391824651234567890","shop_id":"749","timestamp":1736935200,"data":{}}'
    event = webhook_event_builder(None, None)(delivery(body, "tiktok.shop.56", exchange="ledger.webhooks"))
    assert (event.event_type, event.stream_id) == ("webhook.received", "webhook-7391824651234567890")
    assert event.dedupe_key == "tiktok.shop/7391824651234567890"
    assert event.metadata["source"] == "tiktok_webhook"
    assert event.data["body"] == body.decode()
    assert (event.data["type"], event.data["signature_valid"], event.data["timestamp"]) == (
        56, None, "2025-01-15T10:00:00+00:00")  # fmt: skip


def test_a_webhook_without_a_notification_id_is_keyed_by_the_hash_of_its_body() -> None:
    event = webhook_event_builder(None, None)(delivery(WEBHOOK, "tiktok.shop.3"))
    key = "sha256:" + hashlib.sha256(WEBHOOK).hexdigest()
    assert (event.stream_id, event.dedupe_key) == (f"webhook-{key}", f"tiktok.shop/{key}")
    assert event.data["payload"]["data"]["id"] == "12345678901234567890"  # exact, not a float
    assert event.data["type"] == 3


def test_a_signed_webhook_is_recorded_as_valid_when_key_and_secret_are_configured() -> None:
    signature = expected_signature(APP_KEY, APP_SECRET, WEBHOOK)
    build = webhook_event_builder(APP_KEY, APP_SECRET)
    event = build(delivery(WEBHOOK, "tiktok.shop.3", headers={"authorization": signature}))
    assert (event.data["signature_valid"], event.data["authorization"]) == (True, signature)


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "no authorization header"), ({"authorization": ""}, "no authorization header"),
     ({"authorization": "0" * 64}, "authorization does not match the body"),
     ({"authorization": expected_signature(APP_KEY, "other_secret", WEBHOOK)},
      "authorization does not match the body")],
)  # fmt: skip
def test_an_unsigned_or_wrongly_signed_webhook_is_invalid_signature(headers: dict[str, Any], detail: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        webhook_event_builder(APP_KEY, APP_SECRET)(delivery(WEBHOOK, "tiktok.shop.3", headers=headers))
    assert (refused.value.reason, refused.value.detail) == ("invalid_signature", detail)


def test_a_tampered_webhook_body_is_invalid_signature() -> None:
    signature = expected_signature(APP_KEY, APP_SECRET, WEBHOOK)
    tampered = WEBHOOK.replace(b"12345678901234567890", b"12345678901234567891")
    with pytest.raises(Unprocessable) as refused:
        webhook_event_builder(APP_KEY, APP_SECRET)(
            delivery(tampered, "tiktok.shop.3", headers={"authorization": signature})
        )
    assert refused.value.reason == "invalid_signature"


@pytest.mark.parametrize(("raw", "reason"), [(b"{oops", "invalid_json"), (b"[1, 2]", "invalid_schema")])
def test_an_unreadable_webhook_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        webhook_event_builder(None, None)(delivery(raw, "tiktok.shop.3"))
    assert refused.value.reason == reason
