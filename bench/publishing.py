"""Sending a workload with the fault suite's `RecordingPublisher` (persistent, confirmed, mandatory), with
several publishes awaiting their confirms at once: one at a time, the publisher would measure the
round trip to the broker rather than the service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from tests.faults.publisher import Message, RecordingPublisher

WINDOW = 32  # publishes awaiting their confirm at once


async def publish_all(
    publisher: RecordingPublisher, messages: Sequence[Message], window: int = WINDOW, rate: float | None = None
) -> dict[str, float]:
    """Publish every message; when each publish began (monotonic), by message id. With `rate`, message
    k is not sent before k / rate seconds from the start (the soak's steady load)."""
    began: dict[str, float] = {}
    if not messages:
        return began
    # The first one alone: the publisher opens its channel on first use, and only once.
    began[messages[0].message_id] = time.monotonic()
    await publisher.publish(messages[0])
    start = began[messages[0].message_id]
    slots = asyncio.Semaphore(window)
    failures: list[BaseException] = []

    async def send(message: Message) -> None:
        try:
            await publisher.publish(message)
        except Exception as exc:  # kept, and raised once the others are done
            failures.append(exc)
        finally:
            slots.release()

    tasks = []
    for k, message in enumerate(messages[1:], start=1):
        if rate is not None and (wait := start + k / rate - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        await slots.acquire()
        if failures:
            break
        began[message.message_id] = time.monotonic()
        tasks.append(asyncio.create_task(send(message)))
    await asyncio.gather(*tasks)
    if failures:
        raise failures[0]
    return began
