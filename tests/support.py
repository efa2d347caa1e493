"""Helpers for tests on the real broker and database: publish like a collector, wait for outcomes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from service.progress import Folding

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T = TypeVar("T")


def example(name: str) -> dict[str, Any]:
    """One of the bundled example batches (real collector pages from the original system, anonymised)."""
    (path,) = EXAMPLES.glob(f"{name}*.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


async def publish(
    connection: aio_pika.abc.AbstractConnection,
    exchange: str,
    routing_key: str,
    body: bytes | dict[str, Any] | list[Any],
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    channel = await connection.channel(publisher_confirms=True)
    try:
        target = await channel.get_exchange(exchange)
        await target.publish(
            aio_pika.Message(
                payload,
                message_id=message_id,
                headers=headers or {},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
            ),
            routing_key=routing_key,
            mandatory=True,
        )
    finally:
        await channel.close()


async def publish_without_message_id(amqp_url: str, exchange: str, routing_key: str, body: bytes) -> None:
    """aiormq stamps a random message id on every publish; pika sends none, like many non-Python clients."""
    import pika

    def send() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                exchange, routing_key, body, pika.BasicProperties(delivery_mode=2, content_type="application/json")
            )
        finally:
            connection.close()

    await asyncio.to_thread(send)


def equals(expected: object) -> Callable[[object], bool]:
    """A predicate for `eventually` (not `expected.__eq__`: that returns NotImplemented, which is truthy)."""
    return lambda value: value == expected


async def eventually(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], timeout: float = 15.0) -> T:
    """Poll `probe` until `until(result)` holds; fail with the last result after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s; last result: {result!r}")
        await asyncio.sleep(0.05)


async def settled(probe: Callable[[], Awaitable[T]], quiet: float, timeout: float = 30.0) -> T:
    """Poll `probe` until its result has stayed the same for `quiet` seconds; fail after `timeout` seconds.

    For asserting that something does *not* happen: wait until the system has been idle for several of
    its poll intervals, so whatever it was going to do has had time to show up."""
    deadline = time.monotonic() + timeout
    last = await probe()
    since = time.monotonic()
    while True:
        await asyncio.sleep(min(0.05, quiet / 4))
        result = await probe()
        now = time.monotonic()
        if result != last:
            last, since = result, now
        elif now - since >= quiet:
            return result
        if now > deadline:
            raise AssertionError(f"still changing after {timeout}s; last result: {result!r}")


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def drain(connection: aio_pika.abc.AbstractConnection, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message currently on `queue` (acknowledging them)."""
    channel = await connection.channel()
    try:
        q = await channel.declare_queue(queue, passive=True)
        taken = []
        while (message := await q.get(fail=False, no_ack=True)) is not None:
            taken.append(message)
        return taken
    finally:
        await channel.close()


def section(lines: list[str], title: str) -> list[str]:
    """The indented lines under the heading that starts with `title` (operator command output)."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        body.append(line)
    return body


async def projection_lag(engine: AsyncEngine, projection: str | Folding) -> int:
    """Events the projection still has to apply, counted the way `status` and `health` count them; a
    name is one of the service's projections."""
    from service.progress import projection_progress

    if isinstance(projection, str):
        projection = service_projection(projection)
    async with engine.connect() as conn:
        (progress,) = await projection_progress(conn, [projection])
    return int(progress["lag"])


def service_projection(name: str) -> Folding:
    """One of the service's projections, by name (the event types each folds do not depend on settings)."""
    from service.read_models import all_projections
    from service.settings import Settings

    settings = Settings(database_url="postgresql://unused@localhost/unused", amqp_url="amqp://unused@localhost/")
    (projection,) = [p for p in all_projections(settings) if p.name == name]
    return projection
