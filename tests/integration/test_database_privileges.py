"""The service's role has what `migrate` grants it and nothing more (service/privileges.py): it reads and
appends the log, writes the outbox and the projections, and PostgreSQL refuses it everything else by
its privilege checks: changing events (before the append-only trigger is reached), DDL, other
databases.

The allowed path runs as that role in every test that starts the service (conftest.py gives the
service the role's URL): `test_the_service_records_projects_rebuilds_and_publishes_as_its_role` below
says so explicitly, and tests/e2e/test_chatbot_flow.py runs the whole chatbot flow the same way."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from events.recorded import NewEvent
from events.sample_events import CrawlBatchRecorded
from projections.chatbot_tasks import task_id
from service.app import Service
from service.eventstore import append_events
from service.ops.maintenance import rebuild_one
from service.privileges import SCHEMA_PRIVILEGES, TABLE_PRIVILEGES
from service.settings import Settings
from tests.conftest import LedgerRoles, _admin
from tests.integration.chatbot_support import page, take_tasks
from tests.support import eventually, publish, scalar

TABLE_PRIVILEGE_TYPES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def as_service(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the service's role, to this test's database."""
    conn = await asyncpg.connect(dsn(settings.database_url))
    yield conn
    await conn.close()


@pytest.fixture
async def one_event(engine: AsyncEngine) -> None:
    """An event in the log, so that an UPDATE or DELETE that got past the privilege check would reach
    the append-only trigger (which fires per row)."""
    async with engine.begin() as conn:
        await append_events(conn, [NewEvent(stream_id="s", event_type=CrawlBatchRecorded.type_name, data={},
                                            metadata={})])  # fmt: skip


async def test_the_service_connects_as_its_own_role_which_owns_nothing_and_may_create_nothing(
    as_service: asyncpg.Connection, ledger_roles: LedgerRoles, engine: AsyncEngine
) -> None:
    assert await as_service.fetchval("SELECT current_user") == ledger_roles.service
    attributes = await as_service.fetchrow(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    assert dict(attributes) == {"rolsuper": False, "rolcreatedb": False, "rolcreaterole": False, "rolbypassrls": False}
    owned = await scalar(
        engine,
        """SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid) + (SELECT count(*) FROM pg_namespace
                   WHERE nspowner = r.oid) + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)
                  + (SELECT count(*) FROM pg_type WHERE typowner = r.oid)
                  + (SELECT count(*) FROM pg_database WHERE datdba = r.oid)
           FROM pg_roles r WHERE r.rolname = :role""",
        role=ledger_roles.service,
    )
    assert owned == 0
    for schema in (*SCHEMA_PRIVILEGES, "public"):
        assert not await as_service.fetchval("SELECT has_schema_privilege($1, 'CREATE')", schema), schema


async def test_on_every_table_the_service_has_exactly_the_privileges_of_the_policy(
    as_service: asyncpg.Connection,
) -> None:
    tables = await as_service.fetch(
        "SELECT table_schema || '.' || table_name AS name, table_schema AS schema FROM information_schema.tables "
        "WHERE table_schema = ANY($1::text[]) ORDER BY 1",
        list(SCHEMA_PRIVILEGES),
    )
    assert {"eventstore.events", "eventstore.chatbot_outbox", "projections.samples"} <= {t["name"] for t in tables}
    for table in [*tables, {"name": "public.alembic_version", "schema": "public"}]:
        held = {p for p in TABLE_PRIVILEGE_TYPES if await as_service.fetchval("SELECT has_table_privilege($1, $2)",
                                                                              table["name"], p)}  # fmt: skip
        expected = TABLE_PRIVILEGES.get(table["name"]) or SCHEMA_PRIVILEGES[table["schema"]]
        assert held == set(expected), table["name"]
    assert not await as_service.fetchval("SELECT has_table_privilege('eventstore.events', 'UPDATE')")
    assert not await as_service.fetchval("SELECT has_table_privilege('eventstore.events', 'DELETE')")


@pytest.mark.parametrize(
    "statement",
    ["UPDATE eventstore.events SET data = '{}'", "DELETE FROM eventstore.events", "TRUNCATE eventstore.events"],
)
@pytest.mark.usefixtures("one_event")
async def test_changing_events_is_refused_by_privilege_before_the_trigger(
    as_service: asyncpg.Connection, owner_database_url: str, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"^permission denied for table events$") as refused:
        await as_service.execute(statement)
    assert refused.value.sqlstate == "42501"
    # The owner holds every privilege, so the same statement reaches the trigger, the second line of defence,
    # which refuses it with its own error: the service's refusal above came before it.
    owner = await asyncpg.connect(dsn(owner_database_url))
    try:
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only") as stopped:
            await owner.execute(statement)
        assert stopped.value.sqlstate == "23001"
    finally:
        await owner.close()
    assert await as_service.fetchval("SELECT count(*) FROM eventstore.events") == 1


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("DROP TABLE projections.samples", "must be owner of table samples"),
        ("DROP TABLE eventstore.events", "must be owner of table events"),
        ("DROP TABLE eventstore.chatbot_outbox", "must be owner of table chatbot_outbox"),
        ("ALTER TABLE projections.samples ADD COLUMN note text", "must be owner of table samples"),
        ("ALTER TABLE eventstore.events DISABLE TRIGGER events_append_only", "must be owner of table events"),
        ("CREATE INDEX samples_by_name ON projections.samples (product_name)", "must be owner of table samples"),
        ("CREATE TABLE eventstore.notes (note text)", "permission denied for schema eventstore"),
        ("CREATE TABLE projections.notes (note text)", "permission denied for schema projections"),
        ("CREATE TABLE public.notes (note text)", "permission denied for schema public"),
        ("DROP SCHEMA projections CASCADE", "must be owner of schema projections"),
        ("TRUNCATE eventstore.chatbot_outbox", "permission denied for table chatbot_outbox"),
        ("DROP FUNCTION eventstore.reject_change()", "must be owner of function eventstore.reject_change"),
    ],
)
async def test_ddl_is_refused(as_service: asyncpg.Connection, statement: str, refusal: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=f"^{re.escape(refusal)}$") as refused:
        await as_service.execute(statement)
    assert refused.value.sqlstate == "42501"


@pytest.fixture
async def closed_database(server_url: str) -> AsyncIterator[str]:
    """Another application's database, closed to roles it did not grant CONNECT (REVOKE ... FROM PUBLIC)."""
    name = f"sl_closed_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"', f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
    try:
        yield name
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_another_database_is_refused(
    settings: Settings, server_url: str, closed_database: str, other_database: str
) -> None:
    service = make_url(settings.database_url)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"^permission denied for database") as refused:
        await asyncpg.connect(dsn(service.set(database=closed_database).render_as_string(hide_password=False)))
    assert refused.value.sqlstate == "42501"
    assert "does not have CONNECT privilege" in str(refused.value.detail)

    # A database left open to PUBLIC (PostgreSQL's default) lets the role in, but not at another application's data.
    other = str(make_url(other_database).database)
    await _admin(server_url, "CREATE TABLE accounts (secret text)", "INSERT INTO accounts VALUES ('x')", database=other)
    conn = await asyncpg.connect(dsn(service.set(database=other).render_as_string(hide_password=False)))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"^permission denied for table accounts$"):
            await conn.fetch("SELECT * FROM accounts")
    finally:
        await conn.close()


async def test_a_table_a_later_migration_adds_is_granted_by_default(
    owner_database_url: str, as_service: asyncpg.Connection
) -> None:
    """Tables the owner creates later (a new migration) get the schema's privileges for the service, and
    the analysts' read grant, before `migrate` even applies the policy again."""
    owner = await asyncpg.connect(dsn(owner_database_url))
    try:
        await owner.execute("CREATE TABLE projections.added_later (id bigserial PRIMARY KEY, note text)")
        await owner.execute("CREATE TABLE eventstore.added_later (note text)")
    finally:
        await owner.close()
    await as_service.execute("INSERT INTO projections.added_later (note) VALUES ('a')")  # the sequence too
    await as_service.execute("TRUNCATE projections.added_later")
    await as_service.execute("INSERT INTO eventstore.added_later VALUES ('a')")
    await as_service.execute("DELETE FROM eventstore.added_later")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_service.execute("TRUNCATE eventstore.added_later")
    for table in ("projections.added_later", "eventstore.added_later"):
        assert await as_service.fetchval("SELECT has_table_privilege('ledger_analyst', $1, 'SELECT')", table)


async def test_the_service_records_projects_rebuilds_and_publishes_as_its_role(
    live_service: Service,
    worker_queue: aio_pika.abc.AbstractQueue,
    amqp: aio_pika.abc.AbstractConnection,
    settings: Settings,
    ledger_roles: LedgerRoles,
    engine: AsyncEngine,
) -> None:
    assert live_service.engine is not None
    async with live_service.engine.connect() as conn:
        assert (await conn.execute(text("SELECT current_user"))).scalar_one() == ledger_roles.service
    ingest = live_service.topology.ingest.name
    await publish(amqp, ingest, "samples.crawled", page("To review", "2026-05-01 10:00:00"), message_id="first")
    await publish(amqp, ingest, "samples.crawled", page("Shipped", "2026-05-02 10:00:00"), message_id="second")

    async def published() -> list[str | None]:
        return [message_id for message_id, _ in await take_tasks(worker_queue)]

    (sent,) = await eventually(published, bool, timeout=30)
    (sample,) = await eventually(
        lambda: _rows(engine, "SELECT sample_id FROM projections.samples WHERE status = 'shipped'"), bool
    )
    assert sent == task_id(sample, "shipped", 1)
    outbox = "SELECT count(*) FROM eventstore.chatbot_outbox WHERE published_at IS NOT NULL"
    await eventually(lambda: scalar(engine, outbox), lambda n: n == 1)

    rebuilt = await rebuild_one(settings, "samples")  # TRUNCATE of the projection's tables, as the service's role
    assert rebuilt.applied >= 2
    assert await _rows(engine, "SELECT sample_id FROM projections.samples WHERE status = 'shipped'") == [sample]


async def _rows(engine: AsyncEngine, sql: str) -> list[str]:
    async with engine.connect() as conn:
        return [row[0] for row in (await conn.execute(text(sql))).all()]
