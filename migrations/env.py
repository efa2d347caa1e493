"""Alembic environment. Self-contained: reads the URL from the config, DATABASE_OWNER_URL or DATABASE_URL
(the owner migrates; docs/operations.md, "Database roles"), never app code."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import make_url, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

# Replicas that start together all run `migrate`; this lock makes one of them do the work while the
# others wait and then find nothing left to do.
MIGRATION_LOCK_ID = 7_241_0001

config = context.config


def _url() -> str:
    raw = (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_OWNER_URL")
        or os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/sample_ledger")
    )
    return make_url(raw).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    shared = config.attributes.get("connection")
    if shared is not None:
        _run(shared)
    else:
        asyncio.run(_run_async())
