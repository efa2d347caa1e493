"""`sample-ledger migrate`: create the database when missing, then upgrade the schema to head."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from service.database import create_engine, ensure_database_exists

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection, cfg: Config) -> None:
    # env.py uses this connection instead of starting its own event loop (we are inside one).
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(database_url: str) -> bool:
    """Bring the schema to head; True when the database itself had to be created."""
    created = await ensure_database_exists(database_url)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, alembic_config())
    finally:
        await engine.dispose()
    return created


def current_revision_sync(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


if __name__ == "__main__":  # pragma: no cover - convenience for `python -m service.migrate`
    import os

    asyncio.run(migrate(os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/sample_ledger")))
