"""Engine creation and database bootstrap. URLs are redacted before they reach a log or an error."""

from __future__ import annotations

import asyncpg
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(database_url: str) -> URL:
    """Accept `postgresql://` (the contract's form) and use the asyncpg driver."""
    return make_url(database_url).set(drivername="postgresql+asyncpg")


def redacted(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    # pre_ping: without it the first statement after a PostgreSQL restart fails on a stale connection.
    return create_async_engine(
        async_url(database_url), pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size
    )


async def ensure_database_exists(database_url: str) -> bool:
    """Create the database named in the URL when it is missing; True when it was created."""
    url = async_url(database_url)
    name = url.database
    if not name:
        raise ValueError("DATABASE_URL names no database")
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False  # another replica created it between our check and our create
        return True
    finally:
        await conn.close()
