"""`sample-ledger migrate`: create the database when missing, upgrade the schema to head, then grant the
service's role what it needs (service/privileges.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from service.database import create_engine, ensure_database_exists
from service.privileges import ServicePrivileges, grant_service_privileges

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class SchemaNotCurrent(Exception):
    """The database schema is not at head; the message says where it is and what to run."""


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@dataclass(frozen=True)
class MigrationResult:
    created: bool  # the database itself had to be created
    advice: str | None  # what a migration asks the operator to do next (e.g. rebuild projections)
    privileges: ServicePrivileges | None  # None: no service role was named


def _upgrade(connection: Connection, cfg: Config) -> None:
    # env.py uses this connection instead of starting its own event loop (we are inside one).
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(database_url: str, service_role: str | None = None) -> MigrationResult:
    """Bring the schema to head as the role `database_url` logs in as (the owner), then grant
    `service_role` the service's privileges (nothing when it is that same role)."""
    created = await ensure_database_exists(database_url)
    engine = create_engine(database_url, pool_size=1)
    cfg = alembic_config()
    privileges = None
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, cfg)
            # Same transaction, still under env.py's migration lock: replicas migrating at once would
            # otherwise update the same catalog rows together ("tuple concurrently updated").
            if service_role is not None:
                privileges = await grant_service_privileges(conn, service_role)
    finally:
        await engine.dispose()
    # Migrations leave advice in the config's attributes (they must not import this module).
    return MigrationResult(created, cfg.attributes.get("rebuild_advice"), privileges)


def current_revision_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def check_schema_is_current(database_url: str) -> None:
    """Refuse to run against a schema that `migrate` has not brought to head."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(current_revision_sync)
    finally:
        await engine.dispose()
    if current != head:
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing'}, expected {head}: run `sample-ledger migrate` first"
        )
