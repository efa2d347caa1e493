"""An event a projection cannot fold is set aside, not allowed to stop the projection for good.

The poison here is a `sample.crawl_batch_recorded` whose stored body lacks its rows: intake would
refuse it, but a log written by an older version, a hand-made repair or an upcaster bug can hold one.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from events.recorded import NewEvent
from handlers.crawl_batches import crawl_batch_event
from projections.samples import SamplesProjection
from service.eventstore import append_events
from service.ops.explain import explain_sample
from service.ops.status import projection_data, projection_text
from service.runner import catch_up, rebuild
from service.settings import Settings
from tests.support import example, projection_lag, rows, scalar
from tests.unit.events_in_memory import delivery

QUARANTINED = "SELECT projection, event_position, event_type, error FROM projections.quarantined_events"


def good_batch(name: str) -> NewEvent:
    return crawl_batch_event(delivery(example(name), "samples.crawled", message_id=f"good-{name}"))


def poison(event_type: str = "sample.crawl_batch_recorded", **data: object) -> NewEvent:
    """By default a batch without rows: the typed event cannot be read."""
    return NewEvent(
        stream_id=f"poison/{uuid.uuid4()}",
        event_type=event_type,
        data={"source": "portal_tiktok_sample_crawler", **data},
        metadata={"source": "test"},
        dedupe_key=f"poison/{uuid.uuid4()}",
    )


async def append(engine: AsyncEngine, *events: NewEvent) -> list[int]:
    async with engine.begin() as conn:
        await append_events(conn, list(events))
    return [int(p) for p in await scalar_positions(engine, [e.event_id for e in events])]


async def scalar_positions(engine: AsyncEngine, ids: list[uuid.UUID]) -> list[int]:
    found = await rows(engine, "SELECT event_id, position FROM eventstore.events WHERE event_id = ANY(:ids)", ids=ids)
    by_id = {r["event_id"]: r["position"] for r in found}
    return [by_id[i] for i in ids]


@pytest.fixture
def samples() -> SamplesProjection:
    return SamplesProjection()


async def test_an_event_that_fails_among_good_ones_is_quarantined_and_the_rest_applied(
    engine: AsyncEngine, samples: SamplesProjection
) -> None:
    _, bad, _ = await append(engine, good_batch("9_1"), poison(), good_batch("9_2"))

    assert await catch_up(engine, samples) == 3
    assert await projection_lag(engine, "samples") == 0
    (quarantined,) = await rows(engine, QUARANTINED)
    assert (quarantined["projection"], quarantined["event_position"]) == ("samples", bad)
    assert quarantined["error"].startswith("ValidationError: ")
    assert "rows: Field required" in quarantined["error"], "the error names the field"
    batches = await scalar(engine, "SELECT count(DISTINCT last_event_position) FROM projections.samples")
    assert batches == 2, "both good batches around the poison were applied"


async def test_a_page_that_fails_whole_is_retried_not_quarantined(
    engine: AsyncEngine, samples: SamplesProjection
) -> None:
    """Alone, the poison cannot be told from a broken projection: nothing is skipped until an event
    after it folds where it does not."""
    await append(engine, poison())
    with pytest.raises(Exception, match="rows"):
        await catch_up(engine, samples)
    assert await projection_lag(engine, "samples") == 1
    assert await rows(engine, QUARANTINED) == []

    await append(engine, good_batch("9_1"))
    assert await catch_up(engine, samples) == 2
    assert [r["event_type"] for r in await rows(engine, QUARANTINED)] == ["sample.crawl_batch_recorded"]
    assert await projection_lag(engine, "samples") == 0


async def test_a_rebuild_folds_quarantined_events_again(engine: AsyncEngine, samples: SamplesProjection) -> None:
    await append(engine, good_batch("9_1"), poison(), good_batch("9_2"))
    await catch_up(engine, samples)
    live = await rows(engine, "SELECT * FROM projections.samples ORDER BY sample_id")
    async with engine.begin() as conn:  # mark the row, to see the rebuild replace it
        await conn.exec_driver_sql("UPDATE projections.quarantined_events SET error = 'stale'")

    assert await rebuild(engine, samples) == 3
    assert [r["error"] for r in await rows(engine, QUARANTINED)] != ["stale"]
    assert len(await rows(engine, QUARANTINED)) == 1
    assert await rows(engine, "SELECT * FROM projections.samples ORDER BY sample_id") == live


async def test_status_and_explain_show_what_was_quarantined(
    engine: AsyncEngine, samples: SamplesProjection, settings: Settings
) -> None:
    await append(engine, good_batch("9_1"))
    await catch_up(engine, samples)
    (sample,) = await rows(engine, "SELECT sample_id, platform_product_id FROM projections.samples LIMIT 1")
    # A status report on the sample's product without a status: explain lists it among the sample's events.
    report = poison("sample.status_reported", platformProductId=sample["platform_product_id"])
    await append(engine, report, good_batch("9_2"))
    await catch_up(engine, samples)

    async with engine.connect() as conn:
        shown = projection_text(await projection_data(conn, settings))
    assert any("samples" in line and "1 event QUARANTINED" in line for line in shown), shown
    story = await explain_sample(settings, sample["sample_id"])
    (line,) = [line for line in story if "QUARANTINED" in line]
    assert "sample.status_reported" in line
    assert "QUARANTINED by samples (not applied): ValidationError: " in line
