"""TikTok Shop webhooks on the real broker and database: signatures, exact ids, type 56 joins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aio_pika
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from events.webhooks import expected_signature
from service.app import Service, build_service
from service.settings import Settings
from tests.support import drain, eventually, example, publish, rows, scalar

APP_KEY, APP_SECRET = "demo_app_key", "demo_app_secret"
# TikTok Shop's documented example bodies, minified exactly as signed.
TYPE_1 = (
    b'{"type":1,"tts_notification_id":"7391824651234567890","shop_id":"7495123456789012345",'
    b'"timestamp":1736935200,"data":{"order_id":"576512345678901234","order_status":"AWAITING_SHIPMENT",'
    b'"is_on_hold_order":true,"update_time":1736935198}}'
)
TYPE_1_SIGNATURE = "71e7c0cf2386cab13a4f880312961bd5a00c6c03cd49663ae3d6b05f1da6fe55"


def type_56(
    notification: str,
    status: str,
    *,
    application: str | None,
    product: str,
    creator: str,
    timestamp: int,
    as_lists: bool = False,
) -> bytes:
    creator_part: object = {"creator_open_id": creator}
    product_part: object = {"id": product, "sku_id": "1"}
    if as_lists:
        creator_part, product_part = [creator_part], [product_part]
    data: dict[str, object] = {"new_status": status, "creator": creator_part, "product": product_part}
    if application:
        data["application_id"] = application
    return json.dumps(
        {
            "type": 56,
            "tts_notification_id": notification,
            "shop_id": "7495123456789012345",
            "timestamp": timestamp,
            "data": data,
        },
        separators=(",", ":"),
    ).encode()


@pytest.fixture
async def signed_service(settings: Settings) -> AsyncIterator[Service]:
    svc = build_service(settings.model_copy(update={"tiktok_app_key": APP_KEY, "tiktok_app_secret": APP_SECRET}))
    await svc.app.start()
    yield svc
    await svc.app.stop()


async def send(
    amqp: aio_pika.abc.AbstractConnection,
    service: Service,
    body: bytes,
    webhook_type: int,
    signature: str | None = None,
) -> None:
    headers = {"authorization": signature} if signature is not None else {}
    await publish(amqp, service.topology.webhooks.name, f"tiktok.shop.{webhook_type}", body, headers=headers)


async def test_signed_webhooks_pass_and_unsigned_or_tampered_ones_are_dead_lettered(
    signed_service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    assert expected_signature(APP_KEY, APP_SECRET, TYPE_1) == TYPE_1_SIGNATURE
    tampered = TYPE_1.replace(b"AWAITING_SHIPMENT", b"AWAITING_SHIPMENX")
    reserialised = json.dumps(json.loads(TYPE_1)).encode()  # same JSON, different bytes
    await send(amqp, signed_service, TYPE_1, 1)  # unsigned
    await send(amqp, signed_service, tampered, 1, TYPE_1_SIGNATURE)
    await send(amqp, signed_service, reserialised, 1, TYPE_1_SIGNATURE)
    await send(amqp, signed_service, TYPE_1, 1, TYPE_1_SIGNATURE)

    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.webhooks"), lambda n: n == 1)
    dead_queue = signed_service.topology.dead_letter_queue.name
    dead = await eventually(lambda: drain(amqp, dead_queue), lambda got: len(got) == 3)
    assert sorted(m.body for m in dead) == sorted([TYPE_1, tampered, reserialised])
    assert {m.headers["x-ledger-reason"] for m in dead} == {"invalid_signature"}
    (webhook,) = await rows(engine, "SELECT notification_id, type, signature_valid FROM projections.webhooks")
    assert webhook == {"notification_id": "7391824651234567890", "type": 1, "signature_valid": True}
    assert await scalar(engine, "SELECT count(*) FROM eventstore.events") == 1
    # What was recorded is enough to verify the signature again.
    (event,) = await rows(engine, "SELECT data FROM eventstore.events")
    recorded = event["data"]
    assert expected_signature(APP_KEY, APP_SECRET, recorded["body"].encode()) == recorded["authorization"]


async def test_without_a_secret_webhooks_are_recorded_unverified_once_with_exact_ids(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    bare_order_id = (
        b'{"type":1,"tts_notification_id":"7391824651234567891","shop_id":"7495123456789012345",'
        b'"timestamp":1736935200,"data":{"order_id":5765123456789012345,"order_status":"IN_TRANSIT"}}'
    )
    await send(amqp, service, TYPE_1, 1)
    await send(amqp, service, TYPE_1, 1)  # TikTok delivered the same notification twice
    await send(amqp, service, bare_order_id, 1)
    for body, webhook_type in [
        (
            b'{"type":6,"tts_notification_id":"6001","shop_id":"1","timestamp":1736935300,'
            b'"data":{"message":"Shop_id 1 is deauthorized from your APP by merchant."}}',
            6,
        ),
        (
            b'{"type":7,"tts_notification_id":"7001","shop_id":"1","timestamp":1737072000,'
            b'"data":{"message":"expiring","expiration_time":"1739664000"}}',
            7,
        ),
        (b'{"type":999,"tts_notification_id":"9001","timestamp":1737072001,"data":{"anything":[1,2]}}', 999),
        (b'{"type":3,"shop_id":"1","timestamp":1737072002,"data":{"order_id":"1"}}', 3),  # no notification id
    ]:
        await send(amqp, service, body, webhook_type)

    webhooks = await eventually(
        lambda: rows(
            engine,
            "SELECT notification_id, type, signature_valid, disposition FROM projections.webhooks "
            "ORDER BY event_position",
        ),
        lambda got: len(got) == 6,
    )
    assert [(w["notification_id"], w["type"]) for w in webhooks] == [
        ("7391824651234567890", 1),
        ("7391824651234567891", 1),
        ("6001", 6),
        ("7001", 7),
        ("9001", 999),
        (None, 3),
    ]
    assert {w["signature_valid"] for w in webhooks} == {None}
    assert {w["disposition"] for w in webhooks} == {"recorded"}
    order_id = await scalar(
        engine,
        "SELECT data->'payload'->'data'->>'order_id' FROM eventstore.events "
        "WHERE data->>'notification_id' = '7391824651234567891'",
    )
    assert order_id == "5765123456789012345"


async def test_type_56_moves_a_known_sample_and_waits_for_an_unknown_one(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    await publish(amqp, service.topology.ingest.name, "samples.crawled", example("9_2"), message_id="shipped-page")
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.samples"), lambda n: n == 2)
    # Known sample (crawled shipped 2026-04-21), joined by (product, creator): content pending a day later.
    known = sample_id("MX", "1729600011122233344", "7492223334445556667")
    await send(
        amqp,
        service,
        type_56(
            "5601",
            "CONTENT_PENDING",
            application=None,
            product="1729600011122233344",
            creator="7492223334445556667",
            timestamp=1776816000,
            as_lists=True,
        ),
        56,
    )
    # Unknown sample: only an application id; a later crawl row brings it.
    await send(
        amqp,
        service,
        type_56(
            "5602",
            "OVERDUE_CANCELLED",
            application="7460000000000000001",
            product="1729700000000000011",
            creator="open-id-x",
            timestamp=1777680000,
        ),
        56,
    )
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.webhooks"), lambda n: n == 2)

    history = await rows(
        engine,
        "SELECT from_status, to_status, source FROM projections.sample_status_history "
        "WHERE sample_id = :s ORDER BY event_position, seq",
        s=known,
    )
    assert history[-1] == {"from_status": "shipped", "to_status": "content_pending", "source": "webhook"}
    waiting = await rows(engine, "SELECT application_id, status, cancel_reason FROM projections.pending_webhooks")
    assert waiting == [
        {"application_id": "7460000000000000001", "status": "canceled", "cancel_reason": "OVERDUE_CANCELLED"}
    ]

    later = example("9_3")
    later["rows"] = [{**later["rows"][0], "applicationId": "7460000000000000001"}]  # crawled 2026-05-01 16:20
    await publish(amqp, service.topology.ingest.name, "samples.crawled", later, message_id="pending-page")
    piel = sample_id("MX", "1729700000000000011", "7491112223334445556")
    await eventually(
        lambda: scalar(engine, "SELECT status FROM projections.samples WHERE sample_id = :s", s=piel),
        lambda status: status == "canceled",
    )
    assert await scalar(engine, "SELECT count(*) FROM projections.pending_webhooks") == 0
    (sample,) = await rows(
        engine, "SELECT cancel_reason, status_source FROM projections.samples WHERE sample_id = :s", s=piel
    )
    assert sample == {"cancel_reason": "OVERDUE_CANCELLED", "status_source": "webhook"}
    assert await rows(engine, "SELECT disposition, sample_id FROM projections.webhooks ORDER BY event_position") == [
        {"disposition": "applied", "sample_id": known},
        {"disposition": "applied", "sample_id": piel},
    ]
