"""Operator actions on projections: list them, rebuild one from the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from service.database import create_engine
from service.garbage import tune_for_folding
from service.ops.failures import CommandFailed
from service.read_models import all_projections
from service.runner import Projection, rebuild
from service.settings import Settings

_LOG_SIZE = text("SELECT count(*) FROM eventstore.events")


def projection_named(settings: Settings, name: str) -> Projection:
    known = {p.name: p for p in all_projections(settings)}
    if name not in known:
        raise CommandFailed(f"no projection named {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


@dataclass(frozen=True)
class Rebuilt:
    name: str
    applied: int  # events of the projection's own types
    log_events: int  # every event in the log when the rebuild finished

    def line(self) -> str:
        rest = " (the rest are other projections' types)" if self.applied < self.log_events else ""
        return f"projection {self.name} rebuilt: applied {self.applied} of the log's {self.log_events} events{rest}"


async def rebuild_projection(settings: Settings, name: str) -> int:
    """Rebuild one projection; the number of events it applied."""
    return (await rebuild_one(settings, name)).applied


async def rebuild_one(settings: Settings, name: str) -> Rebuilt:
    tune_for_folding()  # a rebuild folds the whole log: the service's collector settings (service/garbage.py)
    projection = projection_named(settings, name)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        applied = await rebuild(engine, projection, settings.page_size)
        async with engine.connect() as conn:
            log_events = int((await conn.execute(_LOG_SIZE)).scalar_one())
    finally:
        await engine.dispose()
    return Rebuilt(name, applied, log_events)


async def projection_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every projection with its checkpoint position (0: none yet) and its tables."""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows: dict[str, int] = dict(
                (await conn.execute(text("SELECT projection, position FROM projections.checkpoints"))).all()
            )
    finally:
        await engine.dispose()
    return [
        {"name": p.name, "position": rows.get(p.name, 0), "tables": list(p.tables)} for p in all_projections(settings)
    ]


LIST_HEADER = "PROJECTION\tCHECKPOINT\tTABLES"


async def list_projections(settings: Settings) -> list[str]:
    """A header line, then one tab-separated line per projection."""
    rows = await projection_rows(settings)
    return [LIST_HEADER, *(f"{r['name']}\tposition {r['position']}\t{', '.join(r['tables'])}" for r in rows)]
