"""SQL for the chatbot read model: schedules, tasks and opt-outs, loaded per page and written once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from events.chatbot_events import Scenario
from projections.bulk_sql import insert_from_rows, rows_param
from projections.chatbot_rules import Schedule, ScheduleState

_SCHEDULE_COLUMNS = ("sample_id, scenario, state, due_at, run_count, max_runs, skip_reason, last_run_at, region, "
                     "platform_creator_id")  # fmt: skip


def _schedules_by(column: str, keys: str) -> str:
    """SQL: the schedules whose `column` is one of the array `keys`, one index lookup per key. As `column
    = ANY(keys)`, PostgreSQL, with no statistics to say how few rows a key has (a table not yet analysed,
    a server with autovacuum off), guessed a few percent of the table per key and read all of it at
    every page. The lateral subquery (OFFSET 0 keeps it from being merged into a join) is planned for
    one key, and for one key the index is the cheap way whatever the guess."""
    return f"""
        SELECT {_SCHEDULE_COLUMNS} FROM unnest(CAST(:{keys} AS text[])) AS k(key)
        CROSS JOIN LATERAL (SELECT * FROM projections.chatbot_schedules s WHERE s.{column} = k.key OFFSET 0) AS s"""


# A page's samples, and every schedule of the creators whose messaging it changed (opt-outs); a schedule
# found both ways comes once (UNION).
_LOAD_SCHEDULES = text(
    _schedules_by("sample_id", "samples") + "\n    UNION" + _schedules_by("platform_creator_id", "creators")
)
_UPSERT_SCHEDULE = text(
    insert_from_rows("projections.chatbot_schedules", (*_SCHEDULE_COLUMNS.split(", "), "updated_position"))
    + """
    ON CONFLICT (sample_id, scenario) DO UPDATE SET
        state = excluded.state, due_at = excluded.due_at, run_count = excluded.run_count,
        max_runs = excluded.max_runs, skip_reason = excluded.skip_reason, last_run_at = excluded.last_run_at,
        region = excluded.region, platform_creator_id = excluded.platform_creator_id,
        updated_position = excluded.updated_position
"""
)
_TASK_COLUMNS = ("task_id", "sample_id", "scenario", "run_no", "platform_creator_id", "region", "messages",
                 "issued_at", "published_at", "publications", "outcome", "outcome_reason", "outcome_at", "retry_at",
                 "closed")  # fmt: skip
_LOAD_TASKS = text(
    f"SELECT {', '.join(_TASK_COLUMNS)} FROM projections.chatbot_tasks WHERE task_id = ANY(CAST(:ids AS text[]))"
)
_UPSERT_TASK = text(
    insert_from_rows("projections.chatbot_tasks", _TASK_COLUMNS)
    + " ON CONFLICT (task_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _TASK_COLUMNS if c != "task_id")
)
_LOAD_OPT_OUTS = text(
    "SELECT platform_creator_id, opted_out, changed_at FROM projections.chatbot_opt_outs "
    "WHERE platform_creator_id = ANY(CAST(:creators AS text[]))"
)
_UPSERT_OPT_OUT = text("""
    INSERT INTO projections.chatbot_opt_outs (platform_creator_id, opted_out, changed_at)
    VALUES (:platform_creator_id, :opted_out, :changed_at)
    ON CONFLICT (platform_creator_id) DO UPDATE SET opted_out = excluded.opted_out, changed_at = excluded.changed_at
""")


async def load_schedules(
    conn: AsyncConnection, sample_ids: Iterable[str], creator_ids: Iterable[str]
) -> list[tuple[Schedule, str, str | None]]:
    """(schedule, region, creator id) for the samples named and every sample of the creators named."""
    params = {"samples": sorted(set(sample_ids)), "creators": sorted(set(creator_ids))}
    if not params["samples"] and not params["creators"]:
        return []
    found = []
    for r in (await conn.execute(_LOAD_SCHEDULES, params)).mappings():
        schedule = Schedule(
            sample_id=r["sample_id"], scenario=Scenario(r["scenario"]), state=ScheduleState(r["state"]),
            due_at=r["due_at"], run_count=r["run_count"], max_runs=r["max_runs"], reason=r["skip_reason"],
            last_run_at=r["last_run_at"],
        )  # fmt: skip
        found.append((schedule, r["region"], r["platform_creator_id"]))
    return found


async def upsert_schedules(conn: AsyncConnection, rows: Sequence[tuple[Schedule, str, str | None, int]]) -> None:
    if not rows:
        return
    await conn.execute(_UPSERT_SCHEDULE, rows_param([
        {"sample_id": s.sample_id, "scenario": s.scenario.value, "state": s.state.value, "due_at": s.due_at,
         "run_count": s.run_count, "max_runs": s.max_runs, "skip_reason": s.reason, "last_run_at": s.last_run_at,
         "region": region, "platform_creator_id": creator, "updated_position": position}
        for s, region, creator, position in rows
    ]))  # fmt: skip


_DELETE_SCHEDULES = text("""
    DELETE FROM projections.chatbot_schedules WHERE (sample_id, scenario) IN (
        SELECT s, c FROM unnest(CAST(:samples AS text[]), CAST(:scenarios AS text[])) AS u(s, c))
""")


async def delete_schedules(conn: AsyncConnection, keys: Sequence[tuple[str, Scenario]]) -> None:
    """Schedules a revised history no longer calls for, none of whose runs was issued."""
    if keys:
        params = {"samples": [s for s, _ in keys], "scenarios": [c.value for _, c in keys]}
        await conn.execute(_DELETE_SCHEDULES, params)


async def load_tasks(conn: AsyncConnection, task_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    return {r["task_id"]: dict(r) for r in (await conn.execute(_LOAD_TASKS, {"ids": ids})).mappings()}


async def upsert_tasks(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_UPSERT_TASK, rows_param(rows))


async def load_opt_outs(conn: AsyncConnection, creator_ids: Iterable[str]) -> dict[str, tuple[bool, Any]]:
    ids = sorted(set(creator_ids))
    if not ids:
        return {}
    rows = (await conn.execute(_LOAD_OPT_OUTS, {"creators": ids})).all()
    return {r[0]: (r[1], r[2]) for r in rows}


async def upsert_opt_outs(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_UPSERT_OPT_OUT, list(rows))
