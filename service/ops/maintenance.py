"""Operator actions on projections: list them, rebuild one from the log."""

from __future__ import annotations

from sqlalchemy import text

from service.database import create_engine
from service.ops.failures import CommandFailed
from service.read_models import all_projections
from service.runner import Projection, rebuild
from service.settings import Settings


def projection_named(settings: Settings, name: str) -> Projection:
    known = {p.name: p for p in all_projections(settings)}
    if name not in known:
        raise CommandFailed(f"no projection named {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


async def rebuild_projection(settings: Settings, name: str) -> int:
    projection = projection_named(settings, name)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        return await rebuild(engine, projection, settings.projection_batch_size)
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
    return [f"{p.name}\tposition {rows.get(p.name, 0)}\t{', '.join(p.tables)}" for p in all_projections(settings)]
