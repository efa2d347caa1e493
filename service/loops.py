"""A background loop that works while there is work, sleeps when idle, backs off on errors, never spins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("sample_ledger.loops")


class Loop:
    def __init__(self, name: str, work: Callable[[], Awaitable[bool]], idle_seconds: float) -> None:
        """`work` returns True when it did something (so there may be more right away)."""
        self.name = name
        self._work = work
        self._idle = idle_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                busy = await self._work()
                failures = 0
            except Exception:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.exception("loop.failed", loop=self.name, retry_in_seconds=delay)
                await self._sleep(delay, wakeable=False)
                continue
            if not busy:
                await self._sleep(self._idle, wakeable=True)

    async def _sleep(self, seconds: float, wakeable: bool) -> None:
        waiter = self._wake if wakeable else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)
