"""--soak MINUTES: the mixed stream at 70 % of the rate the live pass measured for (d) (or at
--soak-rate), for MINUTES, with latency and memory at the start and at the end (a leak or a slow
build-up shows as the difference), and the CPU it took per message."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from bench.passes import Latency, Stage, live
from bench.report import Json, latency, memory, peak_memory
from bench.workloads import mixed

SHARE_OF_MAXIMUM = 0.7
SEED_OFFSET = 1000  # the soak's messages are not (d)'s, or they would be recorded as duplicates
RSS_EVERY_SECONDS = 5.0


async def _sample_rss(stage: Stage, samples: list[tuple[float, int]]) -> None:
    while True:
        samples.append((time.monotonic(), stage.rss_kib("VmRSS")))
        await asyncio.sleep(RSS_EVERY_SECONDS)


def _per_message(cpu_seconds: dict[str, float], messages: int) -> dict[str, float]:
    return {group: round(1000 * seconds / messages, 3) for group, seconds in cpu_seconds.items()}


def _p99(latencies: Sequence[Latency], round_trips: Sequence[float]) -> Json:
    figure = latency(latencies, round_trips)
    value, ratio = figure["value"], figure["ratio"]
    return {**figure, "value": value and value["p99"], "floor": figure["floor"]["p99"], "ratio": ratio and ratio["p99"]}


async def soak(stage: Stage, minutes: float, rate: float, seed: int, round_trips: Sequence[float]) -> Json:
    duration = minutes * 60
    workload = mixed(seed + SEED_OFFSET, max(int(rate * duration), 1))
    window = min(60.0, duration / 5)  # "start" and "end": the first and the last minute (a fifth when shorter)
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    sampler = asyncio.create_task(_sample_rss(stage, samples))
    try:
        figures = await live(stage, workload, rate=rate)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    sending = [kib for at, kib in samples if at - start <= figures.publish_seconds]
    at_start = next((kib for at, kib in samples if at - start >= window), sending[0])
    last_sent = figures.publish_seconds
    return {
        "minutes": minutes,
        "rate_per_second": round(rate, 1),
        "messages": len(workload.messages),
        "sent_per_second": round(len(workload.messages) / figures.publish_seconds, 1),
        "settled_seconds_after_last_publish": round(figures.seconds - figures.publish_seconds, 2),
        "window_seconds": window,
        "visible_p99_start": _p99([lat for lat in figures.visible if lat.sent < window], round_trips),
        "visible_p99_end": _p99([lat for lat in figures.visible if lat.sent >= last_sent - window], round_trips),
        "task_p99_start": _p99([lat for lat in figures.tasks if lat.sent < window], round_trips),
        "task_p99_end": _p99([lat for lat in figures.tasks if lat.sent >= last_sent - window], round_trips),
        "rss_start": memory(at_start, stage.idle_rss_kib, "VmRSS at the end of the first window"),
        "rss_end": memory(sending[-1], stage.idle_rss_kib, "VmRSS at the last publish"),
        "peak_rss": peak_memory(figures, stage.idle_rss_kib),
        # first publish → settled, per message sent: what a steady load costs, whatever the latencies
        "cpu_ms_per_message": _per_message(figures.cpu_seconds, len(workload.messages)),
    }
