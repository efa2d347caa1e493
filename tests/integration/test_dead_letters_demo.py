"""`dead-letters list|replay` and `demo` against the real broker, database and in-process service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import Service
from service.ops.dead_letters import list_dead_letters, replay_dead_letters
from service.ops.demo import run_demo
from service.ops.failures import CommandFailed
from service.settings import Settings
from tests.support import drain, eventually, example, publish, rows, scalar

AMQP = aio_pika.abc.AbstractConnection
BATCHES = "SELECT message_id FROM projections.crawl_batches ORDER BY message_id"


async def queue_depth(amqp: AMQP, name: str) -> int:
    channel = await amqp.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def dead_letter_directly(
    amqp: AMQP, service: Service, body: object, message_id: str, reason: str, **origin: str
) -> None:
    """A dead letter as the service writes one, without having to make the service fail: a valid
    batch can be dead-lettered this way, which poison published to `ledger.ingest` never is."""
    headers = {
        "x-collector-page": "7",  # the sender's own header: a replay must keep it
        "x-ledger-reason": reason,
        "x-ledger-detail": f"made up by the test ({reason})",
        "x-ledger-exchange": origin.get("exchange", service.topology.ingest.name),
        "x-ledger-routing-key": origin.get("routing_key", "samples.crawled"),
        "x-ledger-dead-lettered-at": datetime.now(UTC).isoformat(),
    }
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await publish(amqp, service.topology.dead_letter_exchange.name, "samples.crawled", payload, message_id, headers)


async def poison(amqp: AMQP, service: Service) -> None:
    """Two real dead letters, put there by the service itself."""
    ingest = service.topology.ingest.name
    await publish(amqp, ingest, "samples.crawled", b"{not json", message_id="poison-json")
    await publish(amqp, ingest, "samples.crawled", {"rows": [{"platformProductId": "1"}]}, message_id="poison-schema")


async def dead_letters_reach(amqp: AMQP, service: Service, count: int) -> None:
    await eventually(lambda: queue_depth(amqp, service.topology.dead_letter_queue.name), lambda n: n == count)


@pytest.fixture
async def spy(amqp: AMQP, service: Service) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A second queue on `samples.crawled`, to see exactly what a replay published; deleted afterwards
    (the prefix fixture only deletes the service's own names)."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(f"{service.settings.amqp_prefix}test.spy", durable=False)
    await queue.bind(service.topology.ingest.name, "samples.crawled")
    try:
        yield queue
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_list_shows_reasons_and_leaves_the_queue_as_it_was(
    service: Service, amqp: AMQP, settings: Settings
) -> None:
    assert await list_dead_letters(settings) == [f"no dead letters in {service.topology.dead_letter_queue.name}"]
    await poison(amqp, service)
    await dead_letters_reach(amqp, service, 2)

    lines = await list_dead_letters(settings)
    print("\n".join(lines))

    assert await queue_depth(amqp, service.topology.dead_letter_queue.name) == 2
    assert lines[0] == f"2 dead letter(s) in {service.topology.dead_letter_queue.name}:"
    by_id = {line.split()[0]: line for line in lines[1:]}
    origin = f"from {service.topology.ingest.name} samples.crawled"
    assert "invalid_json" in by_id["poison-json"]
    assert origin in by_id["poison-json"]
    assert "9 bytes" in by_id["poison-json"]
    assert "invalid_schema" in by_id["poison-schema"]
    assert "source: Field required" in by_id["poison-schema"]
    assert len(await list_dead_letters(settings, limit=1)) == 2, "a header line and one letter"
    # Read twice and still whole: same messages, same bytes, same reasons.
    left = {m.message_id: m for m in await drain(amqp, service.topology.dead_letter_queue.name)}
    assert set(left) == {"poison-json", "poison-schema"}
    assert left["poison-json"].body == b"{not json"
    assert left["poison-json"].headers["x-ledger-reason"] == "invalid_json"


async def test_replay_by_id_sends_exactly_that_message_back_and_the_service_records_it(
    service: Service, amqp: AMQP, engine: AsyncEngine, settings: Settings, spy: aio_pika.abc.AbstractQueue
) -> None:
    await dead_letter_directly(amqp, service, example("9_1"), "lost-batch", "handler_error")
    await dead_letter_directly(amqp, service, example("9_2"), "other-batch", "handler_error")
    await dead_letters_reach(amqp, service, 2)

    assert await replay_dead_letters(settings, ["lost-batch"], None, limit=50) == (1, 1)

    await eventually(lambda: rows(engine, BATCHES), lambda r: r == [{"message_id": "lost-batch"}])
    event = await rows(
        engine, "SELECT metadata FROM eventstore.events WHERE event_type = 'sample.crawl_batch_recorded'"
    )
    assert event[0]["metadata"]["exchange"] == service.topology.ingest.name
    assert event[0]["metadata"]["routing_key"] == "samples.crawled"
    copy = await eventually(lambda: spy.get(fail=False, no_ack=True), lambda m: m is not None)
    assert copy is not None
    assert copy.message_id == "lost-batch"
    assert json.loads(copy.body) == example("9_1")
    assert copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert copy.headers["x-collector-page"] == "7"
    assert "x-ledger-replayed-at" in copy.headers
    assert not [k for k in copy.headers if k.startswith("x-ledger-") and k != "x-ledger-replayed-at"]
    assert await spy.get(fail=False) is None, "only the chosen dead letter is replayed"
    remaining = await drain(amqp, service.topology.dead_letter_queue.name)
    assert [m.message_id for m in remaining] == ["other-batch"]


async def test_replay_by_reason_leaves_the_others(
    service: Service, amqp: AMQP, engine: AsyncEngine, settings: Settings
) -> None:
    await poison(amqp, service)
    await dead_letter_directly(amqp, service, example("9_3"), "failed-batch", "handler_error")
    await dead_letters_reach(amqp, service, 3)

    assert await replay_dead_letters(settings, None, "handler_error", limit=50) == (1, 2)

    await eventually(lambda: rows(engine, BATCHES), lambda r: r == [{"message_id": "failed-batch"}])
    await dead_letters_reach(amqp, service, 2)
    left = await drain(amqp, service.topology.dead_letter_queue.name)
    assert {m.message_id: m.headers["x-ledger-reason"] for m in left} == {
        "poison-json": "invalid_json",
        "poison-schema": "invalid_schema",
    }


async def test_a_dead_letter_that_cannot_be_routed_on_replay_stays(
    service: Service, amqp: AMQP, engine: AsyncEngine, settings: Settings
) -> None:
    prefix = settings.amqp_prefix
    await dead_letter_directly(amqp, service, example("9_1"), "no-queue", "handler_error", routing_key="nobody.listens")
    await dead_letter_directly(amqp, service, example("9_2"), "no-exchange", "handler_error", exchange=f"{prefix}gone")
    await dead_letter_directly(amqp, service, example("9_4"), "routable", "handler_error")
    await dead_letters_reach(amqp, service, 3)

    # The missing exchange closes the publishing channel; the replay goes on with a new one.
    assert await replay_dead_letters(settings, None, None, limit=50) == (1, 2)

    await eventually(lambda: rows(engine, BATCHES), lambda r: r == [{"message_id": "routable"}])
    left = {m.message_id: m for m in await drain(amqp, service.topology.dead_letter_queue.name)}
    assert set(left) == {"no-queue", "no-exchange"}
    assert left["no-queue"].headers["x-ledger-routing-key"] == "nobody.listens", "left untouched"
    assert json.loads(left["no-exchange"].body) == example("9_2")


async def test_limit_bounds_a_replay(service: Service, amqp: AMQP, engine: AsyncEngine, settings: Settings) -> None:
    for name in ("9_1", "9_2", "9_3"):
        await dead_letter_directly(amqp, service, example(name), f"batch-{name}", "handler_error")
    await dead_letters_reach(amqp, service, 3)

    assert await replay_dead_letters(settings, None, None, limit=2) == (2, 1)
    await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.crawl_batches"), lambda n: n == 2)
    await dead_letters_reach(amqp, service, 1)


async def test_a_message_rabbitmq_dead_lettered_itself_is_listed_and_replayed_from_x_death(
    service: Service, amqp: AMQP, settings: Settings
) -> None:
    """Delivery limit or expiry: RabbitMQ writes x-death, not x-ledger-*. Expiry is the quick one to cause."""
    channel = await amqp.channel()
    expiring = await channel.declare_queue(
        f"{settings.amqp_prefix}test.expiring",
        durable=False,
        arguments={"x-dead-letter-exchange": service.topology.dead_letter_exchange.name},
    )
    try:
        await expiring.bind(service.topology.ingest.name, "test.expiring")
        body, sender = b'{"hello": 1}', "kept"
        message = aio_pika.Message(body, message_id="native-1", headers={"x-sender": sender}, expiration=0.01)
        await (await channel.get_exchange(service.topology.ingest.name)).publish(message, "test.expiring")
        await dead_letters_reach(amqp, service, 1)

        (line,) = (await list_dead_letters(settings))[1:]
        print(line)
        assert line.startswith("native-1  expired  ")
        assert f"from {service.topology.ingest.name} test.expiring" in line
        assert f"from queue {expiring.name}" in line

        assert await replay_dead_letters(settings, ["native-1"], None, limit=50) == (1, 0)
        back = await eventually(lambda: expiring.get(fail=False, no_ack=True), lambda m: m is not None)
        assert back is not None
        assert (back.message_id, back.body, back.headers.get("x-sender")) == ("native-1", b'{"hello": 1}', "kept")
        assert not [k for k in back.headers if k.startswith(("x-death", "x-first-death", "x-last-death"))]
        assert await queue_depth(amqp, service.topology.dead_letter_queue.name) == 0
    finally:
        await expiring.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_demo_shows_what_came_out_and_can_run_twice(
    service: Service, engine: AsyncEngine, settings: Settings
) -> None:
    lines: list[str] = []
    assert await run_demo(settings, out=lines.append, wait_seconds=30) == 0
    print("\n".join(lines))

    output = "\n".join(lines)
    assert "Published 5 example crawl batches and 1 invalid message" in output
    assert "projections.crawl_batches: 5 demo batch(es)" in output
    assert "demo-9_1_completed_two_creators" in output
    assert "lupita.makeup" in output or "marisol.vlogs" in output
    assert "projections.sample_status_history:" in output
    assert "demo-invalid  invalid_json" in output
    assert "Next: psql" in output
    samples = await scalar(engine, "SELECT count(*) FROM projections.samples")
    assert f"projections.samples: {samples} sample(s)" in output

    again: list[str] = []
    assert await run_demo(settings, out=again.append, wait_seconds=30) == 0
    recorded = "SELECT count(*) FROM eventstore.events WHERE event_type = 'sample.crawl_batch_recorded'"
    assert await scalar(engine, recorded) == 5, "the second run recorded nothing new"


async def test_demo_refuses_when_no_service_consumes(settings: Settings) -> None:
    """`settings` alone: a fresh prefix that no service ever used."""
    with pytest.raises(CommandFailed, match=r"no service is consuming t\w+\.ledger\.ingest\.samples: start it with"):
        await run_demo(settings, out=lambda _: None, wait_seconds=1)


async def test_demo_refuses_when_the_service_stopped_consuming(service: Service, settings: Settings) -> None:
    await service.broker.stop()  # the queue stays, with no consumer
    try:
        with pytest.raises(CommandFailed, match="sample-ledger run"):
            await run_demo(settings, out=lambda _: None, wait_seconds=1)
    finally:
        await service.broker.start()


async def test_dead_letter_commands_say_when_there_is_no_queue(settings: Settings) -> None:
    with pytest.raises(CommandFailed, match="there is no dead-letter queue"):
        await list_dead_letters(settings)
