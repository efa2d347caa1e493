"""Observations apply by observed_at: stale ones never move a status back, newer backwards moves are flagged."""

from __future__ import annotations

import copy

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from service.app import Service
from tests.support import equals, eventually, example, publish, rows, scalar

TECHCONBETO = sample_id("MX", "1729600011122233344", "7492223334445556667")


def sighting(status: str, extracted: str) -> dict[str, object]:
    batch = copy.deepcopy(example("9_2"))
    batch["rows"] = [{**batch["rows"][0], "status": status, "extractedTime": extracted}]
    return batch


async def test_stale_observation_does_not_move_status_and_newer_backwards_move_is_a_regression(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest = service.topology.ingest.name
    for n, (status, extracted) in enumerate(
        [
            ("Completed", "2026-04-21 10:00:00"),
            ("Shipped", "2026-04-21 09:00:00"),  # collected earlier, arrives later: stale
            ("Shipped", "2026-04-22 10:00:00"),  # newer, and backwards: a regression
        ]
    ):
        await publish(amqp, ingest, "samples.crawled", sighting(status, extracted), message_id=f"obs-{n}")
        await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), equals(n + 1))
        if n == 1:
            assert (
                await scalar(engine, "SELECT status FROM projections.samples WHERE sample_id = :s", s=TECHCONBETO)
                == "completed"
            )

    history = await rows(
        engine,
        """
        SELECT from_status, to_status, regression, source, to_char(observed_at AT TIME ZONE 'UTC', 'MM-DD HH24') AS at
        FROM projections.sample_status_history WHERE sample_id = :s ORDER BY event_position""",
        s=TECHCONBETO,
    )
    assert [(h["from_status"], h["to_status"], h["regression"], h["at"]) for h in history] == [
        (None, "completed", False, "04-21 10"),
        ("completed", "shipped", True, "04-22 10"),
    ]
    assert history[0]["source"] == "portal_tiktok_sample_crawler"
    (sample,) = await rows(
        engine,
        "SELECT status, status_changed_at, first_seen_at, last_seen_at FROM projections.samples WHERE sample_id = :s",
        s=TECHCONBETO,
    )
    assert sample["status"] == "shipped"
    assert sample["first_seen_at"].isoformat() == "2026-04-21T09:00:00+00:00"
    assert sample["last_seen_at"].isoformat() == "2026-04-22T10:00:00+00:00"
    derived = await rows(
        engine,
        "SELECT data FROM eventstore.events WHERE event_type = 'sample.status_changed' "
        "AND stream_id = :s ORDER BY stream_version",
        s=f"sample-{TECHCONBETO}",
    )
    assert [(d["data"]["to_status"], d["data"]["regression"]) for d in derived] == [
        ("completed", False),
        ("shipped", True),
    ]


async def test_missing_values_never_erase_known_ones(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest = service.topology.ingest.name
    full = sighting("Shipped", "2026-04-21 10:00:00")
    await publish(amqp, ingest, "samples.crawled", full, message_id="full")
    sparse = {
        "source": "manual_backfill",
        "rows": [
            {
                "platform_product_id": "1729600011122233344",
                "platform_creator_id": "7492223334445556667",
                "status": "Content pending",
                "stock": "",
                "post_rate": None,
                "extracted_time": "2026-04-23 10:00:00",
            }
        ],
    }
    await publish(amqp, ingest, "samples.crawled", sparse, message_id="sparse")
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n == 2)

    (sample,) = await rows(
        engine,
        "SELECT status, stock, post_rate, product_name, platform_creator_username, "
        "content_count FROM projections.samples WHERE sample_id = :s",
        s=TECHCONBETO,
    )
    assert sample["status"] == "content_pending"
    assert (sample["stock"], str(sample["post_rate"]), sample["product_name"]) == (
        1200,
        "0.82",
        "Audífonos inalámbricos ANC",
    )
    assert sample["platform_creator_username"] == "techconbeto"
    # The sparse batch did not open the content drawer: the earlier "no content" look stands.
    assert sample["content_count"] == 0
