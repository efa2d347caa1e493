"""The invariants, checked with queries against the tables and the queues, never with logs.

- every message the publisher sent is recorded exactly once, or is in `ledger.dead` with its reason;
- every projection equals a rebuild from the log;
- no (sample, scenario, run) has more than one task id;
- every issued task reached a bound chatbot queue at least once;
- nothing is left unacknowledged on the inbound queues.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.topology import Topology
from service.consumer_watch import PROBE_HEADER
from service.read_models import all_projections
from service.runner import rebuild
from service.settings import Settings
from tests.faults.publisher import Sent


@dataclass
class Verdict:
    """Each invariant's result, with what broke it."""

    results: dict[str, bool] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, ok: bool, detail: str = "") -> None:
        self.results[name] = ok
        if not ok:
            self.details[name] = detail

    @property
    def ok(self) -> bool:
        return all(self.results.values())

    def __str__(self) -> str:
        return "; ".join(f"{k}: {'ok' if v else 'BROKEN ' + self.details.get(k, '')}" for k, v in self.results.items())


_DOUBLED_TASKS = text("""
    SELECT sample_id, scenario, run_no FROM (
        SELECT sample_id, scenario, run_no, task_id FROM projections.chatbot_tasks
        UNION SELECT sample_id, scenario, run_no, task_id FROM eventstore.chatbot_outbox) t
    GROUP BY 1, 2, 3 HAVING count(DISTINCT task_id) > 1
""")
_RECORDED_MESSAGES = text("""
    SELECT metadata->>'message_id', count(*) FROM eventstore.events WHERE dedupe_key IS NOT NULL GROUP BY 1
""")
_ISSUED_TASKS = text("SELECT data->>'task_id' FROM eventstore.events WHERE event_type = 'chatbot.task_issued'")


async def recorded_message_ids(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(_RECORDED_MESSAGES)
        return Counter({r[0]: r[1] for r in rows})


async def _snapshot(engine: AsyncEngine, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    snapshot = {}
    async with engine.connect() as conn:
        for table in tables:
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            snapshot[table] = sorted((tuple(r) for r in rows), key=repr)
    return snapshot


def _only_in(these: list[tuple[Any, ...]], those: list[tuple[Any, ...]]) -> list[str]:
    return sorted({repr(r) for r in these} - {repr(r) for r in those})[:2]


async def projections_equal_a_rebuild(engine: AsyncEngine, settings: Settings) -> tuple[bool, str]:
    projections = all_projections(settings)
    tables = [t for p in projections for t in p.tables]
    live = await _snapshot(engine, tables)
    for projection in projections:
        await rebuild(engine, projection)
    rebuilt = await _snapshot(engine, tables)
    differing = [t for t in tables if live[t] != rebuilt[t]]
    examples = {t: (_only_in(live[t], rebuilt[t]), _only_in(rebuilt[t], live[t])) for t in differing}
    return not differing, f"tables differ after a rebuild (live only, rebuilt only): {examples}"


async def queue_counts(connection: aio_pika.abc.AbstractConnection, names: list[str]) -> dict[str, tuple[int, int]]:
    """Ready messages and consumers per queue, asked of the broker over AMQP (passive declares).
    Once every replica has stopped, a delivery that was never acknowledged is ready again, so
    "nothing unacknowledged" is "nothing ready and no consumer"."""
    counts = {}
    channel = await connection.channel()
    try:
        for name in names:
            await _drop_probes(channel, name)
            declared = (await channel.declare_queue(name, passive=True)).declaration_result
            counts[name] = (declared.message_count or 0, declared.consumer_count or 0)
    finally:
        await channel.close()
    return counts


async def _drop_probes(channel: aio_pika.abc.AbstractChannel, name: str) -> None:
    """Take the consumer watchdog's probes off the head of the queue: a replica stopped before it
    took its last probe, which is no message of the publisher's."""
    queue = await channel.get_queue(name, ensure=False)
    while (message := await queue.get(fail=False, no_ack=False)) is not None:
        if PROBE_HEADER not in (message.headers or {}):
            await message.nack(requeue=True)
            return
        await message.ack()


async def check_invariants(
    connection: aio_pika.abc.AbstractConnection,
    engine: AsyncEngine,
    settings: Settings,
    topology: Topology,
    sent: list[Sent],
    dead: list[aio_pika.abc.AbstractIncomingMessage],
    delivered_task_ids: set[str],
) -> Verdict:
    verdict = Verdict()
    recorded = await recorded_message_ids(engine)
    dead_ids = {m.message_id: m.headers.get("x-ledger-reason") for m in dead}
    sent_ids = Counter(s.message.message_id for s in sent)
    missing = [mid for mid in sent_ids if recorded[mid] == 0 and mid not in dead_ids]
    twice = [mid for mid in sent_ids if recorded[mid] > 1]
    unexplained_dead = [mid for mid, reason in dead_ids.items() if not reason]
    verdict.record("recorded once or dead-lettered with a reason", not (missing or twice or unexplained_dead),
                   f"missing {missing[:5]} ({len(missing)}), twice {twice[:5]} ({len(twice)}), "
                   f"dead without reason {unexplained_dead[:5]}")  # fmt: skip

    equal, why = await projections_equal_a_rebuild(engine, settings)
    verdict.record("projections equal a rebuild", equal, why)

    async with engine.connect() as conn:
        doubled = (await conn.execute(_DOUBLED_TASKS)).all()
        issued = set((await conn.execute(_ISSUED_TASKS)).scalars())
    verdict.record("one task id per (sample, scenario, run)", not doubled, f"{doubled[:5]}")
    undelivered = issued - delivered_task_ids
    verdict.record("every issued task reached a bound queue", not undelivered,
                   f"{len(undelivered)} of {len(issued)} never arrived, e.g. {sorted(undelivered)[:3]}")  # fmt: skip

    inbound = [r.queue.name for r in topology.routes.values()]
    for _ in range(30):  # a closed channel's deliveries are returned to the queue within moments
        left = {q: c for q, c in (await queue_counts(connection, inbound)).items() if c != (0, 0)}
        if not left:
            break
        await asyncio.sleep(0.5)
    verdict.record("nothing left unacknowledged", not left, f"(ready, consumers): {left}")
    return verdict
