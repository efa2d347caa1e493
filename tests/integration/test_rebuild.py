"""Rebuild equals live: dropping the samples projection and replaying the log gives exactly the same rows."""

from __future__ import annotations

import copy
from typing import Any

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import Service
from service.ops.maintenance import rebuild_projection
from tests.support import eventually, example, publish, rows, scalar

TABLES = {
    "projections.samples": "sample_id",
    "projections.sample_contents": "sample_id, content_key",
    "projections.sample_status_history": "event_position, sample_id, seq",
    "projections.crawl_batches": "message_id",
    "projections.sample_sightings": "sample_id, event_position",
}


async def snapshot(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    return {table: await rows(engine, f"SELECT * FROM {table} ORDER BY {key}") for table, key in TABLES.items()}


async def test_rebuilding_samples_gives_the_live_rows_and_appends_nothing(
    service: Service, amqp: aio_pika.abc.AbstractConnection, engine: AsyncEngine
) -> None:
    ingest = service.topology.ingest.name
    for name in ("9_1", "9_2", "9_3", "9_4", "9_5"):
        await publish(amqp, ingest, "samples.crawled", example(name), message_id=f"live-{name}")
    later = copy.deepcopy(example("9_2"))  # the shipped samples move on, one stale sighting among them
    for row, (status, extracted) in zip(
        later["rows"],
        [("Content pending", "2026-04-25 10:00:00"), ("Ready to ship", "2026-04-01 10:00:00")],
        strict=True,
    ):
        row.update(status=status, extractedTime=extracted)
    await publish(amqp, ingest, "samples.crawled", later, message_id="live-later")
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n == 6)

    live = await snapshot(engine)
    events_before = await scalar(engine, "SELECT count(*) FROM eventstore.events")
    assert len(live["projections.sample_status_history"]) >= 11

    applied = await rebuild_projection(service.settings, "samples")

    assert applied == 6
    assert await snapshot(engine) == live
    assert await scalar(engine, "SELECT count(*) FROM eventstore.events") == events_before
