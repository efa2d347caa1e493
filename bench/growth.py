"""--growth: workload (a) again, with fresh samples, once the log already holds 1M and then 5M events.

The events are written quickly, with COPY, as the service would have recorded them: each is a copy
of a real status report event (built by the service's own handler) under its own id, stream and
idempotency key. The COPY runs in one transaction that first takes the appender lock (as
`begin_appending` does; migration 0005's trigger would refuse a transaction that wrote before taking
it) and, before it commits, moves every projection's checkpoint to its own last event. The runner
therefore never folds them (it cannot read past an appender that is still running, and when the
transaction commits the checkpoints are already past it), yet every index and the read fence work on
a log of that size. VACUUM ANALYZE afterwards, as a long-lived database would have had.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from bench.passes import Stage, live
from bench.report import SLOWEST_FLOOR, Json, latency, rate
from bench.workloads import Catalogue, new_pages
from events.recorded import NewEvent
from handlers.delivery import Delivery
from handlers.reports import status_report_event
from service.eventstore import Checkpoint, begin_appending
from service.runner import save_checkpoint

COLUMNS = ("event_id", "stream_id", "stream_version", "event_type", "event_version", "data", "metadata", "dedupe_key")
_ID_BASE = 0xBE7C_0000 << 96  # preloaded event ids: a range no uuid4 falls in (its version nibble is 4)
_COUNT = text("SELECT count(*) FROM eventstore.events")
_OWN_LAST = text("""
    SELECT pg_current_xact_id()::text AS txid_text, max(position) FROM eventstore.events
    WHERE transaction_id = pg_current_xact_id()
""")


def _status_report() -> NewEvent:
    body = {"region": "MX", "platformProductId": "1729799000000000001", "platformCreatorId": "7492399000000000001",
            "status": "Shipped", "observedAt": "2026-06-01T15:00:00+00:00", "source": "bench_preload"}  # fmt: skip
    delivery = Delivery(json.dumps(body).encode(), "sample.status_reported", "ledger.state", "bench-preload", None, {},
                        datetime.now(UTC))  # fmt: skip
    return status_report_event(delivery)


def _records(first: int, count: int) -> Iterator[tuple[Any, ...]]:
    template = _status_report()
    data = json.dumps(template.data)
    for n in range(first, first + count):
        key = f"bench-preload-{n}"
        metadata = json.dumps({**template.metadata, "message_id": key})
        yield (uuid.UUID(int=_ID_BASE + n), f"status_report-{key}", 1, template.event_type, template.version, data,
               metadata, f"sample.status_reported/{key}")  # fmt: skip


async def preload(stage: Stage, target: int) -> Json:
    """Top the log up to `target` events; what was added, and how long it took."""
    async with stage.engine.connect() as conn:
        present = int((await conn.execute(_COUNT)).scalar_one())
    missing = max(target - present, 0)
    start = time.monotonic()
    async with stage.engine.begin() as conn:
        await begin_appending(conn)
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.copy_records_to_table("events", schema_name="eventstore", columns=COLUMNS,
                                           records=_records(present, missing))  # fmt: skip
        txid, position = (await conn.execute(_OWN_LAST)).one()
        if position is not None:
            for projection in stage.projections:
                await save_checkpoint(conn, projection.name, Checkpoint(int(txid), int(position)))
    copied = time.monotonic()
    async with stage.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM (ANALYZE) eventstore.events"))
    return {"events_in_log": present + missing, "added": missing, "copy_seconds": round(copied - start, 1),
            "copy_events_per_second": round(missing / max(copied - start, 1e-9)),
            "vacuum_seconds": round(time.monotonic() - copied, 1)}  # fmt: skip


async def growth(stage: Stage, targets: list[int], seed: int, pages: int, rows_per_page: int, floor_seconds: float,
                 round_trips: list[float], empty_log_rate: float) -> Json:  # fmt: skip
    """For each target: preload, then (a) on samples of its own (a namespace per step), measured against
    the floors of the main run's (a): `floor_seconds` is its slower floor, as for its end-to-end figure."""
    steps = []
    for namespace, target in enumerate(targets, start=1):
        loaded = await preload(stage, target)
        workload = new_pages(Catalogue(seed, namespace), random.Random(seed + namespace), pages, rows_per_page)
        figures = await live(stage, workload)
        end_to_end = rate(workload.units, workload.unit, figures.seconds, floor_seconds, SLOWEST_FLOOR)
        of_empty_log = round(end_to_end["value"] / empty_log_rate, 3)
        visible = latency(figures.visible, round_trips)
        steps.append({**loaded, "end_to_end": end_to_end, "of_empty_log": of_empty_log, "publish_to_visible": visible,
                      "cpu_seconds": figures.cpu_seconds})  # fmt: skip
    return {"workload": "a", "steps": steps}
