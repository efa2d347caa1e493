"""Observations apply by observed_at: a late one enters the history where it belongs and never moves the
current status back; newer backwards moves are flagged."""

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


async def test_a_late_observation_enters_the_history_in_time_order_and_a_newer_backwards_move_is_a_regression(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest = service.topology.ingest.name
    for n, (status, extracted) in enumerate(
        [
            ("Completed", "2026-04-21 10:00:00"),
            ("Shipped", "2026-04-21 09:00:00"),  # collected earlier, arrives later: history, not status
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
        FROM projections.sample_status_history WHERE sample_id = :s ORDER BY observed_at""",
        s=TECHCONBETO,
    )
    assert [(h["from_status"], h["to_status"], h["regression"], h["at"]) for h in history] == [
        (None, "shipped", False, "04-21 09"),
        ("shipped", "completed", False, "04-21 10"),
        ("completed", "shipped", True, "04-22 10"),
    ]
    assert history[0]["source"] == "portal_tiktok_sample_crawler"
    (sample,) = await rows(
        engine,
        "SELECT status, status_changed_at, first_seen_at, last_seen_at FROM projections.samples WHERE sample_id = :s",
        s=TECHCONBETO,
    )
    assert sample["status"] == "shipped"
    assert sample["status_changed_at"].isoformat() == "2026-04-22T10:00:00+00:00"
    assert sample["first_seen_at"].isoformat() == "2026-04-21T09:00:00+00:00"
    assert sample["last_seen_at"].isoformat() == "2026-04-22T10:00:00+00:00"
    derived = await rows(
        engine,
        "SELECT event_type, data FROM eventstore.events WHERE stream_id = :s "
        "AND event_type <> 'sample.content_observed' ORDER BY stream_version",
        s=f"sample-{TECHCONBETO}",
    )
    changes = [(d["event_type"], d["data"].get("to_status"), d["data"].get("regression")) for d in derived]
    assert changes == [
        ("sample.status_changed", "completed", False),
        ("sample.history_revised", None, None),  # the late sighting: the whole history again, in time order
        ("sample.status_changed", "shipped", True),
    ]
    steps = derived[1]["data"]["steps"]
    assert [(s["from_status"], s["to_status"]) for s in steps] == [(None, "shipped"), ("shipped", "completed")]


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
