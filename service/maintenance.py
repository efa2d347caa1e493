"""Operator actions on projections: list them, rebuild one from the log."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import all_projections
from service.cli import CommandFailed
from service.database import create_engine
from service.runner import Projection, catch_up
from service.settings import Settings


def projection_named(name: str) -> Projection:
    known = {p.name: p for p in all_projections()}
    if name not in known:
        raise CommandFailed(f"no projection named {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


async def reset_projection(engine: AsyncEngine, projection: Projection) -> None:
    """Empty the projection's tables and its checkpoint in one transaction.

    The checkpoint row lock is taken first, so a running service's runner waits for the reset
    instead of applying a page into half-emptied tables.
    """

    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO projections.checkpoints (projection) VALUES (:n) ON CONFLICT DO NOTHING"),
            {"n": projection.name},
        )
        await conn.execute(
            text("SELECT 1 FROM projections.checkpoints WHERE projection = :n FOR UPDATE"), {"n": projection.name}
        )
        await conn.execute(text(f"TRUNCATE {', '.join(projection.tables)}"))
        await conn.execute(
            text(
                "UPDATE projections.checkpoints SET transaction_id = '0', position = 0, updated_at = now() "
                "WHERE projection = :n"
            ),
            {"n": projection.name},
        )


async def rebuild_projection(settings: Settings, name: str) -> int:
    projection = projection_named(name)
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        await reset_projection(engine, projection)
        return await catch_up(engine, projection, settings.projection_batch_size)
    finally:
        await engine.dispose()


async def list_projections(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows: dict[str, int] = dict(
                (await conn.execute(text("SELECT projection, position FROM projections.checkpoints"))).all()
            )
    finally:
        await engine.dispose()
    return [f"{p.name}\tposition {rows.get(p.name, 0)}\t{', '.join(p.tables)}" for p in all_projections()]
