"""`python -m bench` (`make bench`): options, configuration from the environment, the table and the file."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from bench.benchmark import Options, benchmark
from bench.report import render, write
from service.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
# As the Makefile has them (127.0.0.1, not localhost: no IPv6 detour).
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/sample_ledger"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Sizes: (full run, --quick). The full run's (a) is the 400 pages of 50 rows the issue measured with.
PAGES, SINGLES, MIXED = (400, 4), (2000, 100), (4000, 200)
GROWTH_EVENTS = ([1_000_000, 5_000_000], [10_000, 50_000])


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _minutes(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def _counts(value: str) -> list[int]:
    return [_positive(part.replace("_", "")) for part in value.split(",") if part.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Sample Ledger: the real service (`sample-ledger run`) on a fresh database and "
        "RabbitMQ vhost of its own, fed reproducible workloads, every figure shown with its ratio to a raw "
        "floor measured in the same run. Prints one table and writes it as JSON under bench/results/.",
        epilog="PostgreSQL comes from DATABASE_ADMIN_URL, else DATABASE_URL (a superuser's: the benchmark "
        "creates, migrates and drops databases of its own), and RabbitMQ from AMQP_URL (defaults: "
        f"{DEFAULT_DATABASE_URL}, {DEFAULT_AMQP_URL}); the database named there is not touched. "
        "What each figure means: bench/README.md.",
    )
    p.add_argument("--quick", action="store_true",
                   help=f"tiny workloads ((a) {PAGES[1]} pages, (c) {SINGLES[1]} events, (d) {MIXED[1]} messages): "
                        "checks that the benchmark works, in under a minute; the figures mean little")  # fmt: skip
    p.add_argument("--pages", type=_positive, help=f"(a) and (b): pages of new samples (default {PAGES[0]})")
    p.add_argument("--rows-per-page", type=_positive, default=50, help="rows per page (default 50)")
    p.add_argument("--singles", type=_positive, help=f"(c): webhooks and status reports (default {SINGLES[0]})")
    p.add_argument("--mixed", type=_positive, help=f"(d): messages of the mixed stream (default {MIXED[0]})")
    p.add_argument("--seed", type=int, default=7, help="workload seed (default 7): the same seed sends the same bytes")
    p.add_argument("--growth", action="store_true",
                   help="also run (a) with 1M and then 5M events already in the log (minutes more)")  # fmt: skip
    p.add_argument("--growth-events", type=_counts, metavar="N,N",
                   help="log sizes for --growth (default 1000000,5000000; with --quick 10000,50000)")  # fmt: skip
    p.add_argument("--soak", type=_minutes, metavar="MINUTES",
                   help="also send the mixed stream at 70%% of the rate measured for (d) for MINUTES; latency, "
                        "memory and CPU at its start and end")  # fmt: skip
    p.add_argument("--soak-rate", type=_minutes, metavar="EVENTS_PER_SECOND",
                   help="send the soak at this rate instead of 70%% of (d)'s: the same load for two versions "
                        "compared")  # fmt: skip
    p.add_argument("--replicas", type=_positive, default=1,
                   help="service processes on each database (default 1): they share the inbound queues, and "
                        "each projection is folded by one of them at a time; CPU counts them all, memory is "
                        "the largest one's")  # fmt: skip
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON goes (default bench/results)")
    p.add_argument("--timeout", type=_minutes, default=600.0, metavar="SECONDS",
                   help="the longest any one wait may take before the run fails (default 600)")  # fmt: skip
    return p


def take_server_url() -> str:
    """The server to administer, as a superuser: DATABASE_ADMIN_URL where the environment sets the ledger's
    roles up (the Makefile does), else DATABASE_URL. The environment's owner and admin URLs name the
    ledger's own database: removed, so that neither `migrate` on a benchmark database nor the service
    on it inherits them."""
    server_url = os.environ.get("DATABASE_ADMIN_URL") or os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    for ledger_variable in ("DATABASE_ADMIN_URL", "DATABASE_OWNER_URL"):
        os.environ.pop(ledger_variable, None)
    return server_url


def options_from(args: argparse.Namespace) -> Options:
    size = 1 if args.quick else 0
    database_url = take_server_url()
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    Settings(database_url=database_url, amqp_url=amqp_url)  # the service's own checks, before anything connects
    return Options(
        database_url=database_url,
        amqp_url=amqp_url,
        seed=args.seed,
        pages=args.pages or PAGES[size],
        rows_per_page=args.rows_per_page,
        singles=args.singles or SINGLES[size],
        mixed=args.mixed or MIXED[size],
        growth_events=(args.growth_events or GROWTH_EVENTS[size]) if args.growth else None,
        soak_minutes=args.soak,
        soak_rate=args.soak_rate,
        wait_limit=args.timeout,
        quick=args.quick,
        replicas=args.replicas,
    )


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.soak_rate and not args.soak:
        parser().error("--soak-rate needs --soak MINUTES")
    try:
        options = options_from(args)
    except ValidationError as exc:
        sys.exit(f"python -m bench: invalid configuration: {exc.errors()[0]['msg']}")
    started = datetime.now(UTC)
    log_dir = Path(tempfile.mkdtemp(prefix="sample-ledger-bench-"))
    document = asyncio.run(benchmark(options, log_dir))
    print(render(document))
    path = write(document, args.results_dir, started)
    print(f"\nJSON: {path}\nservice logs: {log_dir}")
