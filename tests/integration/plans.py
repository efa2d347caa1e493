"""Reading the plans PostgreSQL makes for the service's statements, for the tests that hold a statement
to its indexes: the plan for the parameters given, and the one PostgreSQL may keep for any parameters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


def positional(statement: str, names: Sequence[str]) -> str:
    """`statement` with $1, $2 .. for its named parameters `names`, in that order, for PREPARE (a `::`
    cast is not a parameter)."""
    return re.sub(r"(?<!:):(\w+)\b", lambda m: f"${names.index(m.group(1)) + 1}", statement)


def buffers(plan: dict[str, Any]) -> int:
    """Shared buffers the statement read, from the cache or not."""
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


async def explained(conn: AsyncConnection, statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """The executed plan of `statement` (named parameters) for `params`."""
    (plan,) = (await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}"), params)).scalar_one()
    return dict(plan["Plan"])


async def explained_generic(conn: AsyncConnection, statement: str, parameters: str, literals: str) -> dict[str, Any]:
    """The executed plan PostgreSQL may keep for a prepared statement (asyncpg prepares every statement)
    once it plans it for any parameters. `statement` uses $1.. for `parameters` (their types); EXECUTE
    takes `literals`, as it takes no binds."""
    await conn.execute(text("SET plan_cache_mode = force_generic_plan"))
    await conn.execute(text(f"PREPARE generic ({parameters}) AS {statement}"))
    try:
        execute = text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE generic ({literals})")
        (plan,) = (await conn.execute(execute)).scalar_one()
    finally:
        await conn.execute(text("DEALLOCATE generic"))
        await conn.execute(text("RESET plan_cache_mode"))
    return dict(plan["Plan"])
