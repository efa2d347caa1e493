"""Status reports, opt-outs, creators and products; and rebuilding every projection gives the live rows."""

from __future__ import annotations

from typing import Any

import aio_pika
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from service.app import Service
from service.ops.maintenance import rebuild_projection
from service.read_models import all_projections
from tests.support import drain, equals, eventually, example, publish, rows, scalar

TECHCONBETO = sample_id("MX", "1729600011122233344", "7492223334445556667")


async def state(
    amqp: aio_pika.abc.AbstractConnection, service: Service, key: str, body: dict[str, Any], message_id: str
) -> None:
    await publish(amqp, service.topology.state.name, key, body, message_id=message_id)


async def test_a_status_report_with_code_4_moves_a_sample_to_content_pending(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    await publish(amqp, service.topology.ingest.name, "samples.crawled", example("9_2"), message_id="page")
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.samples"), lambda n: n == 2)
    report = {
        "region": "mx",
        "platform_product_id": 1729600011122233344,
        "platformCreatorId": "7492223334445556667",
        "status": 4,
        "observedAt": "2026-04-25T12:00:00Z",
        "source": "seller_monitor",
        "extra": "kept",
    }
    await state(amqp, service, "sample.status_reported", report, "report-1")
    await state(amqp, service, "sample.status_reported", {**report, "status": "lost"}, "report-bad")

    await eventually(
        lambda: scalar(engine, "SELECT status FROM projections.samples WHERE sample_id = :s", s=TECHCONBETO),
        equals("content_pending"),
    )
    (change,) = await rows(
        engine,
        "SELECT from_status, to_status, source, regression FROM "
        "projections.sample_status_history WHERE sample_id = :s AND from_status IS NOT NULL",
        s=TECHCONBETO,
    )
    assert change == {
        "from_status": "shipped",
        "to_status": "content_pending",
        "source": "seller_monitor",
        "regression": False,
    }
    assert (
        await scalar(engine, "SELECT data->>'extra' FROM eventstore.events WHERE event_type = 'sample.status_reported'")
        == "kept"
    )
    (dead,) = await eventually(lambda: drain(amqp, service.topology.dead_letter_queue.name), lambda got: len(got) == 1)
    assert dead.headers["x-ledger-reason"] == "invalid_schema"
    detail = str(dead.headers["x-ledger-detail"])
    assert "status: not a known status text or code 1-6" in detail
    assert "lost" not in detail  # the value is not echoed: other fields may carry personal data


async def test_creators_batch_without_whatsapp_keeps_the_known_number_out_of_analysts_reach(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest = service.topology.ingest.name
    first = {
        "source": "creator_crawler",
        "rows": [
            {
                "platformCreatorId": "7491112223334445556",
                "platformCreatorUsername": "piel.de.vale",
                "region": "mx",
                "whatsapp": "+52 55 1234 5678",
                "followers": "12.4K",
            },
            {"platformCreatorUsername": "no.id"},
        ],
    }
    second = {
        "source": "creator_crawler",
        "rows": [
            {
                "platform_creator_id": "7491112223334445556",
                "platform_creator_username": "piel.de.vale.mx",
                "whatsapp": "",
            }
        ],
    }
    await publish(amqp, ingest, "creators.crawled", first, message_id="creators-1")
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.catalog_batches"), lambda n: n == 1)
    await publish(amqp, ingest, "creators.crawled", second, message_id="creators-2")
    await publish(
        amqp,
        ingest,
        "products.crawled",
        {
            "source": "campaign_crawler",
            "rows": [
                {"platformProductId": "1729700000000000011", "productName": "Crema hidratante 50ml", "region": "MX"}
            ],
        },
        message_id="products-1",
    )
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.catalog_batches"), lambda n: n == 3)

    (creator,) = await rows(engine, "SELECT * FROM projections.creators")
    assert (creator["whatsapp"], creator["platform_creator_username"], creator["region"], creator["followers"]) == (
        "+52 55 1234 5678",
        "piel.de.vale.mx",
        "MX",
        12400,
    )
    assert await rows(
        engine,
        "SELECT kind, rows_total, rows_rejected, rejections FROM projections.catalog_batches "
        "WHERE message_id = 'creators-1'",
    ) == [
        {
            "kind": "creators",
            "rows_total": 2,
            "rows_rejected": 1,
            "rejections": [{"row": 1, "reason": "missing platformCreatorId"}],
        }
    ]
    assert await scalar(engine, "SELECT product_name FROM projections.products") == "Crema hidratante 50ml"
    # The number is nowhere an analyst can read: not in the projection, not in the event bodies.
    assert "+52 55" not in str(await rows(engine, "SELECT data FROM eventstore.events"))
    async with engine.connect() as conn:
        await conn.execute(text("SET ROLE ledger_analyst"))
        for forbidden in ("SELECT whatsapp FROM projections.creators", "SELECT personal FROM eventstore.events"):
            savepoint = await conn.begin_nested()
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text(forbidden))
            await savepoint.rollback()
        assert (await conn.execute(text("SELECT platform_creator_username FROM projections.creators"))).scalar()


async def test_opt_outs_apply_in_the_order_of_their_time(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    creator = "7491112223334445556"
    await state(
        amqp,
        service,
        "creator.messaging",
        {"platformCreatorId": creator, "optedOut": True, "reason": "asked us to stop", "at": "2026-05-02T10:00:00Z"},
        "opt-out",
    )
    await state(
        amqp,
        service,
        "creator.messaging",
        {"platformCreatorId": creator, "optedOut": False, "at": "2026-05-01T10:00:00Z"},
        "late-opt-in",
    )
    await state(
        amqp, service, "chatbot.result", {"taskId": "t-1", "outcome": "sent", "at": "2026-05-02T11:00:00Z"}, "result-1"
    )
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM eventstore.events"), lambda n: n == 3)
    await eventually(
        lambda: scalar(engine, "SELECT position FROM projections.checkpoints WHERE projection = 'catalog'"),
        lambda p: p is not None and p >= 2,
    )
    (row,) = await rows(engine, "SELECT opted_out, opted_out_reason FROM projections.creators")
    assert row == {"opted_out": True, "opted_out_reason": "asked us to stop"}
    assert (
        await scalar(
            engine, "SELECT data->>'outcome' FROM eventstore.events WHERE event_type = 'chatbot.result_reported'"
        )
        == "sent"
    )


async def test_rebuilding_every_projection_gives_the_live_rows(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest, webhooks = service.topology.ingest.name, service.topology.webhooks.name
    for name in ("9_1", "9_2", "9_3"):
        await publish(amqp, ingest, "samples.crawled", example(name), message_id=name)
    await publish(
        amqp,
        webhooks,
        "tiktok.shop.56",
        b'{"type":56,"tts_notification_id":"1","timestamp":1777777777,"data":{"application_id":"a-9",'
        b'"new_status":"COMPLETED","product":{"id":"1729700000000000011"},"creator":{"creator_open_id":"x"}}}',
    )
    await publish(
        amqp,
        ingest,
        "creators.crawled",
        {"source": "c", "rows": [{"platformCreatorId": "7494011122233344455", "whatsapp": "+52 1"}]},
        message_id="c1",
    )
    await publish(
        amqp,
        service.topology.state.name,
        "creator.messaging",
        {"platformCreatorId": "7494011122233344455", "optedOut": True, "at": "2026-05-01T00:00:00Z"},
        message_id="o1",
    )
    await eventually(
        lambda: scalar(engine, "SELECT count(*) FROM eventstore.events WHERE dedupe_key IS NOT NULL"), lambda n: n == 6
    )
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.creators"), lambda n: n == 1)
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.webhooks"), lambda n: n == 1)

    for projection in all_projections(service.settings):
        tables = {t: await rows(engine, f"SELECT * FROM {t} ORDER BY 1, 2") for t in projection.tables}
        await rebuild_projection(service.settings, projection.name)
        for table, live in tables.items():
            assert await rows(engine, f"SELECT * FROM {table} ORDER BY 1, 2") == live, table
