"""`sample-ledger dead-letters list|replay`: inspect dead letters, send chosen ones back where they came from.

Both commands take messages from the dead-letter queue with manual acknowledgement and hold them
unacknowledged while they work, so the same message is never seen twice in one run and a command
that dies half way loses nothing: the broker requeues whatever a closed channel still held. What is
not removed is given back at the end with one `basic.nack(multiple, requeue)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import AMQPError, ChannelNotFoundEntity

from handlers.delivery import Delivery
from handlers.topology import build_topology
from service.errors import describe
from service.ops.failures import CommandFailed
from service.settings import Settings

log = structlog.get_logger("sample_ledger.dead_letters")

# Headers the broker or the service added on the way into the dead-letter queue; a replayed message
# must look like the original again, else the service would read its own bookkeeping as the sender's.
_NOT_ORIGINAL = ("x-ledger-", "x-death", "x-first-death-", "x-last-death-", "x-delivery-count")
DETAIL_WIDTH = 120


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to decide about one dead letter, read from its headers."""

    id: str
    reason: str
    detail: str
    exchange: str | None  # None: nobody recorded where it came from, so it cannot be replayed
    routing_key: str
    dead_lettered_at: str
    size: int

    def line(self) -> str:
        detail = self.detail if len(self.detail) <= DETAIL_WIDTH else self.detail[: DETAIL_WIDTH - 1] + "…"
        origin = "origin unknown"
        if self.exchange is not None:
            origin = f"from {self.exchange or '(default exchange)'} {self.routing_key}"
        return f"{self.id}  {self.reason}  {origin}  at {self.dead_lettered_at}  {self.size} bytes  {detail}"


def short_id(message: AbstractIncomingMessage) -> str:
    """The message id, else a hash of the body (a message without an id has no better name)."""
    return message.message_id or "sha256:" + hashlib.sha256(message.body).hexdigest()[:12]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _moment(value: Any) -> str:
    """Seconds-precision UTC; the service writes ISO text, RabbitMQ an AMQP timestamp."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat(timespec="seconds")
    return "unknown time"


def read_dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    """Service dead letters carry x-ledger-* headers; RabbitMQ's own (delivery limit, expiry) carry
    x-death, newest death first."""
    headers = message.headers or {}
    size, fallback_key = len(message.body), message.routing_key or ""
    if "x-ledger-reason" in headers:
        return DeadLetter(
            id=short_id(message),
            reason=_text(headers["x-ledger-reason"]),
            detail=_text(headers.get("x-ledger-detail", "")),
            exchange=_text(headers["x-ledger-exchange"]) if "x-ledger-exchange" in headers else None,
            routing_key=_text(headers.get("x-ledger-routing-key", fallback_key)),
            dead_lettered_at=_moment(headers.get("x-ledger-dead-lettered-at")),
            size=size,
        )
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        death: dict[str, Any] = deaths[0]
        keys = death.get("routing-keys") or [fallback_key]
        reason = _text(death.get("reason", "unknown"))
        return DeadLetter(
            id=short_id(message),
            reason=reason,
            detail=f"dead-lettered by RabbitMQ from queue {_text(death.get('queue', '?'))} "
            f"({reason}, {death.get('count', 1)} time(s))",
            exchange=_text(death.get("exchange", "")),
            routing_key=_text(keys[0]),
            dead_lettered_at=_moment(death.get("time")),
            size=size,
        )
    return DeadLetter(short_id(message), "unknown", "no x-ledger-* or x-death headers", None, fallback_key, "?", size)


@asynccontextmanager
async def _dead_letter_queue(settings: Settings) -> AsyncIterator[tuple[AbstractConnection, AbstractQueue]]:
    name = build_topology(settings.amqp_prefix).dead_letter_queue.name
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    try:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity:
            raise CommandFailed(
                f"there is no dead-letter queue {name}: the service has never run against this broker"
            ) from None
        yield connection, queue
    finally:
        await connection.close()


async def _give_back(queue: AbstractQueue) -> None:
    """Requeue every message this channel still holds, in one go (delivery tag 0 with `multiple`
    means all outstanding). A nack, not a reject: RabbitMQ 4 counts a reject towards a quorum queue's
    delivery limit (20 by default), so listing often would end up dropping letters."""
    channel = await queue.channel.get_underlay_channel()
    if not channel.is_closed:
        await channel.basic_nack(0, multiple=True, requeue=True)


async def peek_dead_letters(settings: Settings, limit: int) -> tuple[str, int, list[DeadLetter]]:
    """The queue's name, how many letters wait in it, and the first `limit` of them, all requeued."""
    letters: list[DeadLetter] = []
    async with _dead_letter_queue(settings) as (_, queue):
        waiting = queue.declaration_result.message_count or 0
        try:
            while len(letters) < limit and (message := await queue.get(no_ack=False, fail=False)) is not None:
                letters.append(read_dead_letter(message))
        finally:
            await _give_back(queue)
    return queue.name, waiting, letters


async def list_dead_letters(settings: Settings, limit: int = 50) -> list[str]:
    """One line per dead letter (up to `limit`), leaving the queue as it was: every message read is
    requeued. RabbitMQ 3.x quorum queues may put requeued messages behind any that arrived meanwhile;
    only that order can change, never the content."""
    name, waiting, letters = await peek_dead_letters(settings, limit)
    if not letters:
        return [f"no dead letters in {name}"]
    shown = f", showing {len(letters)}" if len(letters) < waiting else ""
    return [f"{waiting} dead letter(s) in {name}{shown}:", *(letter.line() for letter in letters)]


async def dead_letters_document(settings: Settings, limit: int = 50) -> dict[str, Any]:
    """`dead-letters list --json`: the same letters as one document; the queue is left as it was."""
    name, waiting, letters = await peek_dead_letters(settings, limit)
    return {"queue": name, "waiting": waiting, "letters": [asdict(letter) for letter in letters]}


@dataclass(frozen=True)
class Replay:
    """What a replay (or a dry run) did: the letters it chose and, of those, how many went back."""

    queue: str
    waiting: int  # in the queue when it began
    chosen: list[DeadLetter]
    replayed: int

    @property
    def left(self) -> int:
        return self.waiting - self.replayed

    def unmatched(self, ids: list[str] | None, reason: str | None) -> str | None:
        """The filters that matched no dead letter, as they were given on the command line."""
        found = {letter.id for letter in self.chosen}
        with_reason = f" with --reason {reason}" if reason is not None else ""
        if ids:
            missing = [i for i in dict.fromkeys(ids) if i not in found]
            return " ".join(f"--id {i}" for i in missing) + with_reason if missing else None
        if reason is not None and not self.chosen:
            return f"--reason {reason}"
        return None


def _chosen(letter: DeadLetter, ids: set[str], reason: str | None) -> bool:
    """Every filter given must match; with none, every letter is chosen."""
    return (not ids or letter.id in ids) and (reason is None or letter.reason == reason)


def replayed_message(message: AbstractIncomingMessage, letter: DeadLetter) -> aio_pika.Message:
    """The original message again: same body and id, the sender's headers, a mark that it was replayed."""
    headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith(_NOT_ORIGINAL)}
    headers["x-ledger-replayed-at"] = datetime.now(UTC).isoformat()
    return aio_pika.Message(
        message.body,
        headers=headers,
        message_id=message.message_id or _dedupe_id(message, letter.routing_key),
        correlation_id=message.correlation_id,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        type=message.type,
        app_id=message.app_id,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _dedupe_id(message: AbstractIncomingMessage, routing_key: str) -> str:
    """aiormq stamps a random id on a message published without one, which would make the replay a
    new message to the service. This id gives the same dedupe key the service computes for no id."""
    delivery = Delivery(message.body, routing_key, "", None, None, {}, datetime.now(UTC))
    return delivery.dedupe_key.split("/", 1)[1]


class _Republisher:
    """Publishes with confirms on a channel of its own: the broker closes a channel that publishes to
    a missing exchange, and that must never be the channel holding the dead letters."""

    def __init__(self, connection: AbstractConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None

    async def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        return self._channel.default_exchange if name == "" else await self._channel.get_exchange(name, ensure=False)

    async def republish(self, message: AbstractIncomingMessage, letter: DeadLetter) -> bool:
        """True once the broker confirmed the message reached a queue; never raises for a refusal."""
        if letter.exchange is None:
            log.warning("dead_letter.replay_skipped", id=letter.id, reason="origin unknown")
            return False
        try:
            exchange = await self._exchange(letter.exchange)
            await exchange.publish(replayed_message(message, letter), routing_key=letter.routing_key, mandatory=True)
        except (AMQPError, TimeoutError) as exc:
            log.warning("dead_letter.replay_failed", id=letter.id, exchange=letter.exchange, error=describe(exc))
            return False
        log.info("dead_letter.replayed", id=letter.id, exchange=letter.exchange, routing_key=letter.routing_key)
        return True


async def replay_dead_letters(
    settings: Settings, ids: list[str] | None, reason: str | None, limit: int
) -> tuple[int, int]:
    """Republish the chosen dead letters (by id as `list` prints it, and/or by reason; all when
    neither is given; at most `limit`) to their original exchange and routing key, and remove each
    only after the broker confirmed its republish. Returns (replayed, dead letters left of those
    waiting when the replay began). A dead letter whose republish fails stays where it is.

    If the connection drops between the confirm and the ack, the message is both replayed and still
    dead-lettered; replaying it again is harmless because it keeps its message id and the service
    records one event per id."""
    done = await replay(settings, ids, reason, limit)
    return done.replayed, done.left


async def replay(
    settings: Settings, ids: list[str] | None, reason: str | None, limit: int, dry_run: bool = False
) -> Replay:
    """`replay_dead_letters`, saying which letters were chosen. With `dry_run` nothing is published
    and every letter is given back: `chosen` is what a replay would have sent (up to `limit`)."""
    wanted = set(ids or ())
    chosen: list[DeadLetter] = []
    replayed = 0
    async with _dead_letter_queue(settings) as (connection, queue):
        waiting = queue.declaration_result.message_count or 0
        publisher = _Republisher(connection)
        try:
            # Bounded by the count at the start: letters arriving meanwhile wait for the next replay.
            for _ in range(waiting):
                counted = len(chosen) if dry_run else replayed
                if counted >= limit or (message := await queue.get(no_ack=False, fail=False)) is None:
                    break
                letter = read_dead_letter(message)
                if not _chosen(letter, wanted, reason):
                    continue
                chosen.append(letter)
                if not dry_run and await publisher.republish(message, letter):
                    await message.ack()
                    replayed += 1
        finally:
            await _give_back(queue)
    return Replay(queue.name, waiting, chosen, replayed)
