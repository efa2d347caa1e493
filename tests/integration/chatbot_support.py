"""Shared pieces for the chatbot tests: a worker queue bound to chatbot.topic, crawl pages, a fake clock, and a
PostgreSQL-side fault that kills a transaction at its commit."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import example


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# Noon in Mexico City: outside the default quiet hours.
MX_NOON = datetime(2026, 5, 4, 18, 0, tzinfo=UTC)


def page(
    status: str,
    extracted: str,
    *,
    creator: str = "7491112223334445556",
    product: str = "1729700000000000011",
    region: str = "MX",
    expanded: bool = False,
) -> dict[str, Any]:
    """A one-row crawl page for one sample (based on example 9.3)."""
    batch = copy.deepcopy(example("9_3"))
    batch["options"]["expandViewContent"] = expanded
    batch["rows"] = [
        {
            **batch["rows"][0],
            "status": status,
            "extractedTime": extracted,
            "platformCreatorId": creator,
            "platformProductId": product,
            "region": region,
        }
    ]
    return batch


async def bind_worker_queue(
    amqp: aio_pika.abc.AbstractConnection, exchange: str, name: str
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue like the chatbot workers': bound to chatbot.topic with `chatbot.sample.*`; deleted afterwards."""
    channel = await amqp.channel()
    topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(name, durable=False, auto_delete=False)
    await queue.bind(topic, "chatbot.sample.*")
    try:
        yield queue
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def take_tasks(queue: aio_pika.abc.AbstractQueue) -> list[tuple[str | None, dict[str, Any]]]:
    """Every task waiting on `queue`, as (AMQP message id, the one task of the body)."""
    taken = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        body = json.loads(message.body)
        assert isinstance(body, list), body
        assert len(body) == 1, body
        assert message.headers["task_id"] == body[0]["taskId"]
        assert message.headers["task_count"] == 1
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        taken.append((message.message_id, body[0]))
    return taken


# A deferred constraint trigger runs at COMMIT, after every statement of the transaction succeeded: raising
# there is a process killed after the dispatcher's work and before the commit, whatever that work was.
_KILL_AT_COMMIT = (
    """
    CREATE FUNCTION eventstore.test_kill_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'process killed before the commit (outbox row for task %)', NEW.task_id;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER test_kill_at_commit AFTER INSERT ON eventstore.chatbot_outbox
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION eventstore.test_kill_at_commit()
    """,
)
_HEAL = (
    "DROP TRIGGER IF EXISTS test_kill_at_commit ON eventstore.chatbot_outbox",
    "DROP FUNCTION IF EXISTS eventstore.test_kill_at_commit()",
)


@contextlib.asynccontextmanager
async def commits_writing_the_outbox_fail(engine: AsyncEngine) -> AsyncIterator[None]:
    """While inside, any transaction that wrote an outbox row fails at COMMIT and is rolled back whole."""
    async with engine.begin() as conn:
        for statement in _KILL_AT_COMMIT:
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            for statement in _HEAL:
                await conn.execute(text(statement))
