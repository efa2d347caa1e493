"""The dispatcher's per-pass lookups read what they need through the indexes, whatever the size of the
tables, and on tables PostgreSQL has never analysed (a server with autovacuum off, or a table that grew
since its last ANALYZE). Found in a soak whose latencies grew with the data already held:

- the "anything due?" check, run at every wake-up, read every chatbot task ever issued (a sequential
  scan chosen for an EXISTS that was guessed to find a row at once): 5-8 ms at 10,000 tasks;
- the trace lookup of a pass that issues tasks read a bitmap of every status change ever appended
  (the type index), to keep the few of the samples due: 10 ms at 52,000 changes;
- the daily cap's lookup of the creators' recent tasks read a bitmap of every first publication ever
  made (the run index): 4-6 ms at 27,000 tasks, 475 times over 4 ms in one benchmark.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import dispatcher
from service.eventstore import begin_appending
from tests.integration.plans import buffers, explained, explained_generic, positional

pytestmark = pytest.mark.integration

ROWS = 20_000
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
# Few buffers are an index's first pages; the statements as they were read hundreds to thousands.
FEW_BUFFERS = 60
OUTBOX_ROWS, CREATORS = 27_000, 7_600


async def _fill_chatbot_tables(engine: AsyncEngine) -> None:
    """ROWS closed tasks and finished schedules, one open task whose retry is not yet due, and nothing
    analysed."""
    async with engine.begin() as conn:
        await conn.execute(text(f"""
            INSERT INTO projections.chatbot_tasks (task_id, sample_id, scenario, run_no, platform_creator_id, region,
                messages, issued_at, publications, closed, retry_at)
            SELECT 'task-' || n, 'sample-' || n, 'shipped', 1, 'creator-' || n, 'MX', '[]'::jsonb, :now, 1,
                   n > 1, CASE WHEN n = 1 THEN CAST(:now AS timestamptz) + interval '1 hour' END
            FROM generate_series(1, {ROWS}) AS n
        """), {"now": NOW})  # fmt: skip
        await conn.execute(text(f"""
            INSERT INTO projections.chatbot_schedules (sample_id, scenario, state, due_at, run_count, max_runs,
                region, platform_creator_id, updated_position)
            SELECT 'sample-' || n, 'shipped', 'done', :now, 1, 1, 'MX', 'creator-' || n, n
            FROM generate_series(1, {ROWS}) AS n
        """), {"now": NOW})  # fmt: skip


async def test_the_anything_due_check_reads_an_index_entry_not_every_task(engine: AsyncEngine) -> None:
    await _fill_chatbot_tables(engine)
    statement = dispatcher._ANYTHING_DUE.text
    async with engine.connect() as conn:
        nothing_due = (await conn.execute(dispatcher._ANYTHING_DUE, {"now": NOW})).scalar_one()
        custom = await explained(conn, statement, {"now": NOW})
        generic = await explained_generic(conn, positional(statement, ["now"]), "timestamptz",
                                           f"'{NOW.isoformat()}'")  # fmt: skip
        retry_due = (await conn.execute(dispatcher._ANYTHING_DUE, {"now": NOW + timedelta(hours=2)})).scalar_one()
    assert nothing_due is False
    assert retry_due is True  # the open task's retry, an hour after NOW
    for plan in (custom, generic):
        assert buffers(plan) < FEW_BUFFERS, json.dumps(plan, indent=1)


async def test_a_due_schedule_is_found_beside_many_finished_ones(engine: AsyncEngine) -> None:
    await _fill_chatbot_tables(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE projections.chatbot_schedules SET state = 'pending' "
                                "WHERE sample_id = 'sample-7'"))  # fmt: skip
    async with engine.connect() as conn:
        found = (await conn.execute(dispatcher._ANYTHING_DUE, {"now": NOW})).scalar_one()
        plan = await explained(conn, dispatcher._ANYTHING_DUE.text, {"now": NOW})
    assert found is True
    assert buffers(plan) < FEW_BUFFERS, json.dumps(plan, indent=1)


async def test_the_trace_lookup_reads_the_samples_streams_not_every_status_change(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await begin_appending(conn)  # before the first write, as every appender
        await conn.execute(text(f"""
            INSERT INTO eventstore.events (event_id, stream_id, stream_version, event_type, event_version, data,
                                           metadata)
            SELECT gen_random_uuid(), 'sample-' || (n % {ROWS // 2}), n / {ROWS // 2} + 1, 'sample.status_changed', 1,
                   '{{}}'::jsonb, jsonb_build_object('traceparent', 'trace-' || n)
            FROM generate_series(0, {ROWS - 1}) AS n
        """))  # fmt: skip
    params = {"stream_ids": ["sample-3", "sample-4", "sample-none"], "event_type": "sample.status_changed"}
    statement = dispatcher._STATUS_CHANGE_TRACES.text
    async with engine.connect() as conn:
        rows = (await conn.execute(dispatcher._STATUS_CHANGE_TRACES, params)).mappings().all()
        custom = await explained(conn, statement, params)
        generic = await explained_generic(conn, positional(statement, ["stream_ids", "event_type"]), "text[], text",
                                           "'{sample-3,sample-4,sample-none}', 'sample.status_changed'")  # fmt: skip
    # Each stream's latest change: version 2 of stream n is event n + ROWS / 2.
    assert {r["stream_id"]: r["traceparent"] for r in rows} == {
        "sample-3": f"trace-{3 + ROWS // 2}", "sample-4": f"trace-{4 + ROWS // 2}",
    }  # fmt: skip
    for plan in (custom, generic):
        assert buffers(plan) < FEW_BUFFERS, json.dumps(plan, indent=1)


async def test_the_cap_lookup_reads_the_creators_rows_not_every_first_publication(engine: AsyncEngine) -> None:
    # As the benchmark had them: a first publication of a ~700-byte task for most creators, all in the window.
    async with engine.begin() as conn:
        await conn.execute(text(f"""
            INSERT INTO eventstore.chatbot_outbox (task_id, publication, sample_id, scenario, run_no,
                platform_creator_id, body, created_at, next_attempt_at)
            SELECT 'task-' || n, 1, 'sample-' || n, 'shipped', 1, 'creator-' || (n % {CREATORS}),
                   jsonb_build_array(repeat('x', 700)), CAST(:now AS timestamptz) - n * interval '1 second', :now
            FROM generate_series(1, {OUTBOX_ROWS}) AS n
            UNION ALL  -- a retry's publication in the window: not a first publication, not counted
            SELECT 'task-3', 2, 'sample-3', 'shipped', 1, 'creator-3', '[]'::jsonb, :now, :now
        """), {"now": NOW})  # fmt: skip
    since = NOW - timedelta(days=1)
    params = {"creators": ["creator-3", "creator-4", "creator-none"], "since": since}
    statement = dispatcher._RECENT.text
    async with engine.connect() as conn:
        rows = (await conn.execute(dispatcher._RECENT, params)).all()
        custom = await explained(conn, statement, params)
        literals = f"'{{creator-3,creator-4,creator-none}}', '{since.isoformat()}'"
        generic = await explained_generic(conn, positional(statement, ["creators", "since"]), "text[], timestamptz",
                                          literals)  # fmt: skip
    # Tasks n ≡ 3 and n ≡ 4 (mod CREATORS), n seconds before NOW.
    expected = sorted(
        (f"creator-{k}", timedelta(seconds=n)) for k in (3, 4) for n in range(k, OUTBOX_ROWS + 1, CREATORS)
    )
    assert sorted((creator, NOW - at) for creator, at in rows) == expected
    for plan in (custom, generic):
        assert buffers(plan) < FEW_BUFFERS, json.dumps(plan, indent=1)
