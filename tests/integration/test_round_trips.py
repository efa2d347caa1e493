"""Work that is one statement goes to PostgreSQL as one statement: no BEGIN, no COMMIT. In a steady
stream most of the service's time went to sending statements (each a system call, and the server's
work to parse and run it), and a third of a commit's round trips were its BEGIN and COMMIT.

What each test checks is what the server was sent, and whether a transaction block was open when it
was (asyncpg's own view of the connection)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import eventstore
from service import recorder as recorder_module
from service.dispatcher import Dispatcher
from service.recorder import Recorder
from service.relay import OutboxRelay
from service.settings import Settings
from tests.integration.test_event_store import ping

pytestmark = pytest.mark.integration


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, bool]]]:
    """Every statement sent through `engine` meanwhile: (its first words, whether it ran in a transaction
    block). Looked at once it ran: the driver sends a transaction's BEGIN just before its first statement."""
    sent: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        in_block = conn.connection.driver_connection.is_in_transaction()
        sent.append((" ".join(statement.split())[:40], in_block))

    event.listen(engine.sync_engine, "after_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", record)


async def test_the_recorder_commits_in_one_statement_and_it_is_durable_when_it_returns(engine: AsyncEngine) -> None:
    recorder, the_event = Recorder(engine), ping(1)
    recorder.start()
    try:
        with statements(engine) as sent:
            assert await recorder.record(the_event) is True
        async with engine.connect() as other:  # another connection sees it at once: committed
            assert (await other.execute(text("SELECT count(*) FROM eventstore.events"))).scalar_one() == 1
        with statements(engine) as again:
            assert await recorder.record(the_event) is False  # recorded before: the check of what was skipped
    finally:
        await recorder.stop()
    assert [(words.split()[0], in_block) for words, in_block in sent] == [("WITH", False)]
    assert all(not in_block for _, in_block in again)


async def test_a_dispatcher_pass_with_nothing_due_is_one_statement(engine: AsyncEngine, settings: Settings) -> None:
    with statements(engine) as sent:
        report = await Dispatcher(engine, settings).dispatch_once()
    assert report.total == 0
    assert [(words.split()[:2], in_block) for words, in_block in sent] == [(["SELECT", "EXISTS"], False)]


async def test_a_relay_pass_with_nothing_to_send_is_one_statement(engine: AsyncEngine, settings: Settings) -> None:
    relay = OutboxRelay(engine, settings.amqp_url, "unused.exchange")  # claims first: nothing to publish
    with statements(engine) as sent:
        report = await relay.relay_once()
    assert report.published == 0
    assert [(words.split()[:2], in_block) for words, in_block in sent] == [
        (["UPDATE", "eventstore.chatbot_outbox"], False)
    ]


async def test_a_recorded_event_is_answered_and_announced_though_the_check_of_a_skipped_one_fails(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The append commits on its own, so what it recorded is durable before the skipped events are
    checked: failing it with them would make its handler's retry answer "already there", and wake nothing."""
    told: list[frozenset[str]] = []
    recorder, seen_before, new = Recorder(engine, on_committed=told.append), ping(1), ping(2)
    recorder.start()
    try:
        assert await recorder.record(seen_before) is True
        told.clear()

        async def the_check_fails(*_: Any) -> None:
            raise ConnectionResetError("the connection dropped after the append")

        monkeypatch.setattr(recorder_module, "check_skipped_are_duplicates", the_check_fails)
        answers = await asyncio.gather(recorder.record(new), recorder.record(seen_before), return_exceptions=True)
        monkeypatch.undo()
        assert answers[0] is True
        assert isinstance(answers[1], ConnectionResetError)  # its handler retries it
        assert told == [frozenset({"test.ping"})]
        assert await recorder.record(seen_before) is False  # the retry: there before, nothing new
        async with engine.connect() as other:
            assert (await other.execute(text("SELECT count(*) FROM eventstore.events"))).scalar_one() == 2
    finally:
        await recorder.stop()


async def test_a_batch_whose_check_fails_for_good_is_isolated_so_only_the_failing_event_fails(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, first, second = Recorder(engine), ping(1), ping(2)
    recorder.start()
    try:
        assert await recorder.record(first) is True
        assert await recorder.record(second) is True
        checked: list[int] = []
        real_check = eventstore.check_skipped_are_duplicates

        async def fails_for_the_pair(conn: Any, skipped: Any) -> None:
            checked.append(len(skipped))
            if len(skipped) > 1:
                raise ValueError("not a transient error")
            await real_check(conn, skipped)

        monkeypatch.setattr(recorder_module, "check_skipped_are_duplicates", fails_for_the_pair)
        answers = await asyncio.gather(recorder.record(first), recorder.record(second), return_exceptions=True)
        assert list(answers) == [False, False]
        assert checked == [2, 1, 1]
    finally:
        await recorder.stop()
