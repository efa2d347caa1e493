"""Engine creation and database bootstrap. URLs are redacted before they reach a log or an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from events import json_text

CREATE_DATABASE_LOCK_ID = 7_241_0000


def async_url(database_url: str) -> URL:
    """Accept `postgresql://` (the contract's form) and use the asyncpg driver."""
    return make_url(database_url).set(drivername="postgresql+asyncpg")


def redacted(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


# Who connects, for what: the service runs, the owner migrates (and owns the schema), the admin creates
# the other two (`migrate --create-roles`). docs/operations.md, "Database roles".
Purpose = Literal["service", "owner", "admin"]


@dataclass(frozen=True)
class DatabaseLogin:
    """A database URL, the variable it was configured in and what it is for, so that a failure names
    the variable to fix."""

    variable: str
    url: str
    purpose: Purpose

    @property
    def role(self) -> str | None:
        """The role it logs in as; None when the URL names no user (libpq then uses the OS user)."""
        return make_url(self.url).username

    @property
    def database(self) -> str | None:
        return make_url(self.url).database

    def shown(self) -> str:
        return f"{self.variable}={redacted(self.url)}"


def redacted_amqp(amqp_url: str) -> str:
    parts = urlsplit(amqp_url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


# Every statement is prepared once per connection (asyncpg), and after five executions PostgreSQL may
# keep one plan for it, which it makes again only when a table it reads is analysed. A plan made while a
# table was small (a new database, a server with autovacuum off, a table not yet analysed) can be a
# sequential scan, which then reads the whole table at every execution as it grows: the benchmark found
# the chatbot projection reading every schedule at every page that way. A connection is replaced at its
# first checkout once it is this old, so that its statements are planned again for the tables as they
# are. (asyncpg ages the statements of its own cache out after the same five minutes, for the same
# reason; SQLAlchemy prepares the statements itself and keeps them for the connection's life.)
PLAN_LIFETIME_SECONDS = 300


def create_engine(database_url: str, pool_size: int = 10, plan_lifetime_seconds: float = PLAN_LIFETIME_SECONDS
                  ) -> AsyncEngine:  # fmt: skip
    # No pre-ping: it costs a round trip on every checkout, on every page and commit of the hot path.
    # After a PostgreSQL restart the first statement on a stale connection fails instead; SQLAlchemy
    # then invalidates the whole pool, and every caller retries a transient error (recorder,
    # handlers, runner, dispatcher and relay loops), so a restart costs one failed attempt, not data.
    return create_async_engine(async_url(database_url), pool_size=pool_size, max_overflow=pool_size,
                               pool_recycle=plan_lifetime_seconds,
                               json_serializer=json_text.dumps, json_deserializer=json_text.loads)  # fmt: skip


def single_statements(engine: AsyncEngine) -> AsyncEngine:
    """The engine (same pool) for work that is one statement: it commits on its own, so no BEGIN and
    no COMMIT go to the server, two round trips fewer (the recorder's append, the relay's claim).
    Anything of two statements or more that must hold together belongs in `engine.begin()`."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def ensure_database_exists(database_url: str) -> bool:
    """Create the database named in the URL when it is missing; True when it was created."""
    url = async_url(database_url)
    name = url.database
    if not name:
        raise ValueError("DATABASE_URL names no database")
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        # Replicas starting together would race between the check and the CREATE.
        await conn.execute("SELECT pg_advisory_lock($1)", CREATE_DATABASE_LOCK_ID)
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False  # created by a replica that does not take the lock (an older version)
        return True
    finally:
        await conn.close()  # also releases the advisory lock
