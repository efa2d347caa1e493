"""Poison messages among good ones, against the service as a user runs it (a subprocess behind the
rig's proxies, webhook signatures checked): each poison message lands exactly where docs/contract.md
says, the service keeps consuming, and every invariant of the fault suite holds afterwards."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import pytest

from tests.faults.checker import recorded_message_ids
from tests.faults.conftest import Rig
from tests.faults.poison_corpus import PERSONAL, RECORDED, UNROUTABLE, Poison, poison_corpus
from tests.faults.publisher import Message, Sent, mixed_workload

SEED = 71  # test_faults.py uses 1-6
SETTLE_SECONDS = 45


async def _publish_as(rig: Rig, message: Message, content_type: str) -> None:
    """As the recording publisher does, with another content type (the recording publisher always
    sends application/json); recorded in `sent` so the checker expects it too."""
    channel = await rig.amqp.channel(publisher_confirms=True, on_return_raises=True)
    try:
        exchange = await channel.get_exchange(f"{rig.settings.amqp_prefix}ledger.{message.exchange}")
        await exchange.publish(
            aio_pika.Message(message.body, message_id=message.message_id, headers=dict(message.headers),
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type=content_type),
            routing_key=message.routing_key, mandatory=True,
        )  # fmt: skip
    finally:
        await channel.close()
    rig.publisher.sent.append(Sent(message, time.monotonic()))


async def _publish(rig: Rig, poison: Poison) -> None:
    if poison.content_type == "application/json":
        await rig.publisher.publish(poison.message)
    else:
        await _publish_as(rig, poison.message, poison.content_type)


async def _dead_letter_count(rig: Rig) -> int:
    channel = await rig.amqp.channel()
    try:
        queue = await channel.declare_queue(rig.topology.dead_letter_queue.name, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def _wait_until_taken(rig: Rig, dead_expected: int) -> str:
    """Like `rig.settle`, except that the poison meant for `ledger.dead` stays unrecorded there; what
    is still outstanding after `SETTLE_SECONDS`, or "" once settled."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        now = await rig.progress()
        lag = dict(now["lag"])  # type: ignore[call-overload]
        if (now["unrecorded"] == dead_expected and not any(lag.values()) and now["unpublished"] == 0
                and now["due"] == 0 and await _dead_letter_count(rig) >= dead_expected):  # fmt: skip
            return ""
        if time.monotonic() > deadline:
            return f"not settled after {SETTLE_SECONDS}s: {now}, {await _dead_letter_count(rig)} dead letters"
        await asyncio.sleep(0.5)


async def _read_dead_letters(rig: Rig) -> dict[str, list[aio_pika.abc.AbstractIncomingMessage]]:
    """Every dead letter by message id, read without acknowledging: closing the channel puts them back
    for `rig.verdict()`, which drains the queue for its own check."""
    by_id: dict[str, list[aio_pika.abc.AbstractIncomingMessage]] = {}
    channel = await rig.amqp.channel()
    try:
        queue = await channel.get_queue(rig.topology.dead_letter_queue.name, ensure=True)
        while (message := await queue.get(fail=False, no_ack=False)) is not None:
            by_id.setdefault(str(message.message_id), []).append(message)
    finally:
        await channel.close()
    return by_id


def _interleave(good: list[Message], corpus: list[Poison]) -> list[Message | Poison]:
    """The poison spread evenly among the good messages."""
    mixed: list[Message | Poison] = []
    taken = 0
    for n, message in enumerate(good, start=1):
        mixed.append(message)
        while taken < len(corpus) and (taken + 1) * len(good) <= n * len(corpus):
            mixed.append(corpus[taken])
            taken += 1
    return mixed + corpus[taken:]


async def test_poison_is_dead_lettered_as_the_contract_says_and_the_service_keeps_consuming(rig: Rig) -> None:
    corpus = poison_corpus()
    assert len({p.kind for p in corpus}) == len(corpus) >= 20
    rig.describe("poison corpus", f"{len(corpus)} kinds of bad input among good messages")
    good = mixed_workload(seed=SEED, count=220)
    after_poison = good[-40:]
    replica = rig.replica()
    replica.start()
    await rig.wait_for_topology()

    for item in [*_interleave(good[:-40], corpus), *after_poison]:
        if isinstance(item, Poison):
            await _publish(rig, item)
        else:
            await rig.publisher.publish(item)
        if item is corpus[len(corpus) // 2]:
            # No queue is bound to this key: RabbitMQ returns the message (mandatory), the publish fails,
            # and nothing reaches the service; the publisher does not count it as sent.
            with pytest.raises(aio_pika.exceptions.DeliveryError):
                await rig.publisher.publish(UNROUTABLE)
    assert UNROUTABLE.message_id not in {s.message.message_id for s in rig.publisher.sent}

    dead_expected = [p for p in corpus if p.expect != RECORDED]
    unsettled = await _wait_until_taken(rig, len(dead_expected))
    recorded = await recorded_message_ids(rig.engine)
    dead = await _read_dead_letters(rig)

    wrong = {}
    for poison in corpus:
        mid = poison.message.message_id
        letters = dead.get(mid, [])
        if poison.expect == RECORDED:
            outcome = f"recorded {recorded[mid]}x, dead-lettered {len(letters)}x"
            if (recorded[mid], len(letters)) != (1, 0):
                wrong[poison.kind] = f"expected recorded once; {outcome}"
            continue
        if len(letters) != 1 or recorded[mid]:
            wrong[poison.kind] = f"expected one {poison.expect} dead letter; {len(letters)}, recorded {recorded[mid]}x"
            continue
        (letter,) = letters
        headers = letter.headers
        detail = str(headers.get("x-ledger-detail", ""))
        problems = [
            f"reason {headers.get('x-ledger-reason')!r} ({detail})" if headers.get("x-ledger-reason") != poison.expect
            else "",
            "detail echoes a personal value" if any(p in detail for p in PERSONAL) else "",
            "detail over 500 characters" if len(detail) > 500 else "",
            "body changed" if letter.body != poison.message.body else "",
            "origin headers" if (headers.get("x-ledger-exchange"), headers.get("x-ledger-routing-key")) != (
                f"{rig.settings.amqp_prefix}ledger.{poison.message.exchange}", poison.message.routing_key) else "",
            "content type" if letter.content_type != "application/octet-stream" else "",
        ]  # fmt: skip
        if any(problems):
            wrong[poison.kind] = "; ".join(p for p in problems if p)
    assert not wrong, "\n".join([unsettled, *(f"{kind}: {why}" for kind, why in wrong.items())])
    assert not unsettled, unsettled  # e.g. a recorded poison message that a projection cannot apply

    assert replica.running(), "a poison message stopped the service"
    good_dead = sorted(m.message_id for m in good if m.message_id in dead)
    assert not good_dead, f"good messages dead-lettered: {good_dead[:5]}"
    not_once = sorted(m.message_id for m in good if recorded[m.message_id] != 1)
    assert not not_once, f"good messages not recorded exactly once: {not_once[:5]}"
    assert all(recorded[m.message_id] == 1 for m in after_poison), "the service stopped consuming after the poison"

    assert await replica.stop() == 0
    verdict = await rig.verdict()
    assert verdict.ok, str(verdict)
