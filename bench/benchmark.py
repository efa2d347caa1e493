"""The whole run, in order: a sandbox (databases and vhost of its own), the floors, the held pass on
one fresh database, the live pass on another, then the soak and the growth steps on the live one when
asked. Floors come first, while nothing else runs; the held pass before the live one so that the
live database is the one that keeps growing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.floors import (
    BrokerFloor,
    DatabaseFloor,
    broker_floor,
    database_floor,
    prepare_database_floor,
    server_settings,
)
from bench.growth import growth
from bench.passes import HELD_TUNINGS, HeldFigures, LiveFigures, held, live, stage
from bench.report import Json, WorkloadResults, floors_json, workload_json
from bench.sandbox import REPOSITORY, sandbox
from bench.soak import SHARE_OF_MAXIMUM, soak
from bench.workloads import standard_workloads


@dataclass(frozen=True)
class Options:
    database_url: str
    amqp_url: str
    seed: int
    pages: int
    rows_per_page: int
    singles: int
    mixed: int
    growth_events: list[int] | None  # None: no growth steps
    soak_minutes: float | None  # None: no soak
    soak_rate: float | None  # events a second; None: 70 % of what (d) measured
    wait_limit: float  # seconds any one wait may take before the run fails
    quick: bool
    replicas: int = 1  # service processes on each database


def progress(line: str) -> None:
    """Progress goes to stderr; stdout carries only the table."""
    print(f"bench: {line}", file=sys.stderr, flush=True)


def _commit() -> str | None:
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True,  # noqa: S607
                               text=True, check=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


async def benchmark(options: Options, log_dir: Path) -> Json:
    started, clock = datetime.now(UTC), time.monotonic()
    progress("generating the workloads")
    workloads = standard_workloads(options.seed, options.pages, options.rows_per_page, options.singles, options.mixed)
    brokers: dict[str, BrokerFloor] = {}
    databases: dict[str, DatabaseFloor] = {}
    helds: dict[str, HeldFigures] = {}
    lives: dict[str, LiveFigures] = {}
    async with sandbox(options.database_url, options.amqp_url) as box:
        progress(f"sandbox: databases {box.name}, {box.name}_held; {box.isolation}")
        live_url, held_url = await box.new_database(), await box.new_database("held")
        await prepare_database_floor(live_url)
        postgres = await server_settings(live_url)
        for w in workloads:
            progress(f"floors for ({w.key}) {w.title}")
            brokers[w.key] = await broker_floor(box.amqp_url, box.prefix, w)
            databases[w.key] = await database_floor(live_url, w)
        async with stage(box, held_url, log_dir / "held.log", options.wait_limit, options.replicas,
                         **HELD_TUNINGS) as held_stage:  # fmt: skip
            for w in workloads:
                progress(f"held pass ({w.key}) {w.title}: ingest only, then catch-up only")
                helds[w.key] = await held(held_stage, w)
        async with stage(box, live_url, log_dir / "live.log", options.wait_limit, options.replicas) as live_stage:
            for w in workloads:
                progress(f"live pass ({w.key}) {w.title}: end to end")
                lives[w.key] = await live(live_stage, w)
            results = {w.key: WorkloadResults(w, brokers[w.key], databases[w.key], lives[w.key], helds[w.key])
                       for w in workloads}  # fmt: skip
            document: Json = {
                "benchmark": "sample-ledger",
                "started_at": started.isoformat(timespec="seconds"),
                "commit": _commit(),
                "seed": options.seed,
                "quick": options.quick,
                "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "postgres": postgres},
                "isolation": box.isolation,
                "replicas": options.replicas,
                "service": {"idle_rss_mib": round(live_stage.idle_rss_kib / 1024, 1), "logs": str(log_dir)},
                "floors": {key: floors_json(r) for key, r in results.items()},
                "workloads": {key: workload_json(r, live_stage.idle_rss_kib) for key, r in results.items()},
                "soak": None,
                "growth": None,
            }
            if options.soak_minutes:
                progress(f"soak: {options.soak_minutes:g} minutes of the mixed stream")
                maximum = document["workloads"]["d"]["end_to_end"]["value"]
                rate = options.soak_rate or SHARE_OF_MAXIMUM * maximum
                document["soak"] = await soak(live_stage, options.soak_minutes, rate, options.seed,
                                              brokers["d"].round_trips)  # fmt: skip
            if options.growth_events:
                progress(f"growth: (a) with {', '.join(f'{n:,}' for n in options.growth_events)} events in the log")
                a = results["a"]
                document["growth"] = await growth(
                    live_stage, options.growth_events, options.seed, options.pages, options.rows_per_page,
                    max(a.broker.consume_seconds, a.database.upsert_seconds), a.broker.round_trips,
                    document["workloads"]["a"]["end_to_end"]["value"],
                )  # fmt: skip
    document["seconds"] = round(time.monotonic() - clock, 1)
    return document
