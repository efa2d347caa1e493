"""Output for people and for scripts: `--json` documents on stdout, progress lines on stderr.

Progress goes to stderr so that stdout stays one clean document (or the plain report) when piped. On
a terminal a progress line is rewritten in place; elsewhere (a log, a CI job) it is printed again
only when its text changes, and never more often than every few seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact, as the database has it
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=_jsonable)


def print_json(document: Any) -> None:
    print(to_json(document))


class Progress:
    """One progress line on stderr (or `stream`)."""

    def __init__(self, stream: TextIO | None = None, every_seconds: float = 5.0) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._every = every_seconds
        self._shown = ""
        self._shown_at = 0.0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if self._tty:
            self._stream.write(f"\r\033[K{text}")
        elif text != self._shown and (not self._shown or now - self._shown_at >= self._every):
            self._stream.write(f"{text}\n")
        else:
            return
        self._stream.flush()
        self._shown, self._shown_at = text, now

    def done(self) -> None:
        """End the line on a terminal, so what follows starts on a line of its own."""
        if self._tty and self._shown:
            self._stream.write("\n")
            self._stream.flush()
        self._shown = ""

    @asynccontextmanager
    async def ticking(self, text: str) -> AsyncIterator[None]:
        """`text` with the seconds spent so far, while the block runs."""
        started = time.monotonic()

        async def tick() -> None:
            while True:
                self.update(f"{text} ({time.monotonic() - started:.0f}s)")
                await asyncio.sleep(1)

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            self.done()


class Silent(Progress):
    """Progress nobody sees (library calls and tests)."""

    def update(self, text: str) -> None:
        pass

    def done(self) -> None:
        pass
