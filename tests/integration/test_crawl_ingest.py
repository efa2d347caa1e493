"""Crawl batches published to `ledger.ingest` become events and sample rows (real RabbitMQ + PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from service.app import Service
from tests.support import eventually, example, publish, rows, scalar

SAMPLES_SQL = """
    SELECT sample_id, region, platform_product_id, platform_creator_id, platform_creator_username, status,
           content_count, post_rate, stock, available_sample_count, is_showcase, product_name,
           platform_campaign_name, request_time_remaining
    FROM projections.samples ORDER BY platform_product_id, creator_key
"""


async def publish_batch(
    amqp: aio_pika.abc.AbstractConnection, service: Service, body: object, message_id: str | None
) -> None:
    await publish(amqp, service.topology.ingest.name, "samples.crawled", body, message_id=message_id)  # type: ignore[arg-type]


async def batches_projected(engine: AsyncEngine, count: int) -> None:
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n >= count)


async def test_completed_page_gives_every_creator_their_own_sample(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    await publish_batch(amqp, service, example("9_1"), "batch-9.1")
    await batches_projected(engine, 1)

    samples = await rows(engine, SAMPLES_SQL)
    by_creator = {s["platform_creator_username"]: s for s in samples}
    assert set(by_creator) == {"lupita.makeup", "marisol.vlogs", "hogar.con.dani"}
    lupita = by_creator["lupita.makeup"]
    assert lupita["sample_id"] == sample_id("MX", "1729487365012345678", "7494011122233344455")
    assert lupita["status"] == "completed"
    assert lupita["content_count"] == 2
    assert lupita["post_rate"] == Decimal("0.67")
    assert (lupita["stock"], lupita["available_sample_count"], lupita["is_showcase"]) == (340, 25, True)
    assert lupita["product_name"] == "Set de brochas de maquillaje 12 piezas"
    # The other creator of the same product keeps a sample of her own, known to have no content.
    assert by_creator["marisol.vlogs"]["content_count"] == 0
    assert by_creator["marisol.vlogs"]["is_showcase"] is False

    contents = await rows(
        engine,
        """
        SELECT s.platform_creator_username AS creator, c.content_type, c.title, c.view_count, c.like_count,
               c.order_count, c.order_amount
        FROM projections.sample_contents c JOIN projections.samples s USING (sample_id)
        ORDER BY c.title""",
    )
    assert [(c["creator"], c["content_type"], c["title"]) for c in contents] == [
        ("hogar.con.dani", "live", "LIVE cocina saludable"),
        ("lupita.makeup", "video", "Mis brochas favoritas #tiktokshop"),
        ("lupita.makeup", "video", "Tutorial rápido de ojos ahumados"),
    ]
    live, brochas, tutorial = contents
    assert (brochas["view_count"], brochas["like_count"], brochas["order_amount"]) == (12400, 853, Decimal("1351.57"))
    assert (tutorial["view_count"], tutorial["order_amount"]) == (3208, Decimal("189.00"))
    assert (live["view_count"], live["order_count"], live["order_amount"]) == (1100, 3, Decimal("597.30"))


async def test_every_example_batch_is_applied(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    for name in ("9_1", "9_2", "9_3", "9_4", "9_5"):
        await publish_batch(amqp, service, example(name), f"batch-{name}")
    await batches_projected(engine, 5)

    samples = {(s["platform_product_id"], s["platform_creator_id"]): s for s in await rows(engine, SAMPLES_SQL)}
    assert len(samples) == 10
    studio = samples[("1729600099988877766", "7020202020202020202")]
    assert studio["status"] == "shipped"
    assert studio["available_sample_count"] is None
    assert studio["post_rate"] is None
    # 9.3 did not open the content drawer: content stays unknown, never "no content".
    assert samples[("1729700000000000011", "7491112223334445556")]["content_count"] is None
    assert samples[("1729799999999999922", "7490000000000000444")]["region"] == "FR"
    # 9.4 is snake_case and sparse: region defaults to MX, both creators of the product kept.
    assert samples[("1729811112222333344", "7489998887776665554")]["status"] == "to_review"
    assert samples[("1729811112222333344", "7488887776665554443")]["status"] == "canceled"
    # 9.5 shows logistics only: shipment tracking is not content.
    mochila = samples[("1729900000000000055", "7487776665554443332")]
    assert mochila["content_count"] == 0
    assert (
        await scalar(
            engine, "SELECT count(*) FROM projections.sample_contents WHERE sample_id = :s", s=mochila["sample_id"]
        )
        == 0
    )
    batches = await rows(
        engine,
        "SELECT message_id, rows_total, rows_rejected, samples_new FROM projections.crawl_batches ORDER BY message_id",
    )
    assert [(b["message_id"], b["rows_total"], b["samples_new"]) for b in batches] == [
        ("batch-9_1", 4, 3),
        ("batch-9_2", 2, 2),
        ("batch-9_3", 2, 2),
        ("batch-9_4", 2, 2),
        ("batch-9_5", 1, 1),
    ]


async def test_one_invalid_row_is_rejected_and_the_rest_applied(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    batch = example("9_2")
    batch["rows"].insert(1, {**batch["rows"][0], "platformCreatorId": "7000000000000000001", "status": "Lost"})
    batch["rows"].append({"status": "Shipped", "platformCreatorId": "7000000000000000002"})
    await publish_batch(amqp, service, batch, "with-bad-rows")
    await batches_projected(engine, 1)

    (crawl,) = await rows(engine, "SELECT * FROM projections.crawl_batches")
    assert (crawl["rows_total"], crawl["rows_rejected"], crawl["samples_new"]) == (4, 2, 2)
    assert crawl["rejections"] == [
        {"row": 1, "reason": "unknown status 'Lost'"},
        {"row": 3, "reason": "missing platformProductId"},
    ]
    assert await scalar(engine, "SELECT count(*) FROM projections.samples") == 2
