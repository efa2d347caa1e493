"""Fixtures on real services: PostgreSQL and RabbitMQ from DATABASE_URL / AMQP_URL (CI and this
machine), else testcontainers where a Docker engine exists. Each test gets its own database, cloned
from a migrated template, and its own exchange/queue name prefix; both are removed afterwards.

The service and the commands under test connect as the ledger's service role, with only the privileges
`migrate` grants it (service/privileges.py); the tests' own connections (`engine`, set-up, clean-up)
use the server's superuser. The session's owner and service roles get unique names (roles belong to
the whole server) and are dropped at the end with whatever they own or were granted."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.topology import build_topology
from service.app import Service, build_service
from service.database import DatabaseLogin, create_engine
from service.logging import configure_logging
from service.migrate import migrate
from service.ops.database_roles import MAINTENANCE_DATABASE, set_up_roles
from service.settings import Settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

# The server the tests administer, as its superuser: DATABASE_ADMIN_URL where the environment sets the
# ledger's roles up (the Makefile does), else DATABASE_URL. The environment's owner and admin URLs are
# the ledger's, not the tests': removed, so that no command a test starts inherits them.
SERVER_URL = os.environ.get("DATABASE_ADMIN_URL") or os.environ.get("DATABASE_URL")
for _ledger_variable in ("DATABASE_ADMIN_URL", "DATABASE_OWNER_URL"):
    os.environ.pop(_ledger_variable, None)

# Services built in this process log the way `sample-ledger run` does. Left unconfigured, structlog
# renders tracebacks with rich (when installed) and every local variable: seconds per error line,
# which blocks the event loop long enough for RabbitMQ to drop a connection mid-handshake.
configure_logging("console", "INFO")


def _unavailable(what: str, err: Exception) -> None:
    message = f"{what}: no URL in the environment and no Docker engine ({type(err).__name__}: {err})"
    if REQUIRE_SERVICES:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server URL (any database on it) as a superuser; test databases are created beside it."""
    if SERVER_URL:
        yield SERVER_URL
        return
    try:
        from testcontainers.community.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine")
        container.start()
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
        return
    try:
        yield container.get_connection_url(driver=None)
    finally:
        container.stop()


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    if url := os.environ.get("AMQP_URL"):
        yield url
        return
    try:
        from testcontainers.community.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-alpine")
        container.start()
    except Exception as exc:
        _unavailable("RabbitMQ", exc)
        return
    try:
        host, port = container.get_container_host_ip(), container.get_exposed_port(container.port)
        yield f"amqp://{container.username}:{container.password}@{host}:{port}/"
    finally:
        container.stop()


def _admin_dsn(server: str) -> str:
    return make_url(server).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def _db_url(server: str, name: str) -> str:
    return make_url(server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)


async def _admin(server: str, *statements: str, database: str = "postgres") -> None:
    """Statements run as the server's superuser, in the maintenance database unless `database` says."""
    conn = await asyncpg.connect(_db_url(server, database))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def login_url(url: str, role: str, password: str, database: str | None = None) -> str:
    """`url` (a database on the server), logging in as `role`."""
    changed = make_url(url).set(drivername="postgresql", username=role, password=password)
    return (changed if database is None else changed.set(database=database)).render_as_string(hide_password=False)


@dataclass(frozen=True)
class LedgerRoles:
    """The session's owner and service roles. The password is theirs in the URLs, as in production,
    though a server that trusts local connections does not check it."""

    owner: str
    service: str
    password: str


@pytest.fixture(scope="session")
def ledger_roles(server_url: str) -> Iterator[LedgerRoles]:
    """Named here, created with the template (by `migrate --create-roles`'s own code), dropped at the end."""
    suffix = uuid.uuid4().hex[:10]
    roles = LedgerRoles(f"sl_owner_{suffix}", f"sl_service_{suffix}", secrets.token_hex(12))
    try:
        yield roles
    finally:
        asyncio.run(drop_roles(server_url, [roles.owner, roles.service]))


async def drop_roles(server: str, roles: list[str]) -> None:
    """Drop roles that tests created, after what they own and were granted in every database (DROP OWNED
    works in one database at a time, and on the shared objects, databases, from any). Only ever called
    with roles the tests named themselves."""
    conn = await asyncpg.connect(_admin_dsn(server))
    try:
        existing = [
            r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", roles)
        ]
        databases = {MAINTENANCE_DATABASE} | {
            r["datname"]
            for r in await conn.fetch(
                """SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
                   WHERE s.refclassid = 'pg_authid'::regclass
                     AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1))""",
                existing,
            )
        }
    finally:
        await conn.close()
    if not existing:
        return
    named = ", ".join(f'"{role}"' for role in existing)
    for database in sorted(databases):
        await _admin(server, f"REASSIGN OWNED BY {named} TO CURRENT_USER", f"DROP OWNED BY {named}", database=database)
    await _admin(server, *(f'DROP ROLE IF EXISTS "{role}"' for role in existing))


async def _set_up_ledger(server: str, name: str, roles: LedgerRoles) -> None:
    """What `migrate --create-roles` does for a deployment: the roles and the database (owned by the
    owner), then the migrations as the owner and the service's grants."""
    owner_url = login_url(server, roles.owner, roles.password, name)
    service_url = login_url(server, roles.service, roles.password, name)
    await set_up_roles(
        DatabaseLogin("DATABASE_ADMIN_URL", _db_url(server, name), "admin"),
        DatabaseLogin("DATABASE_OWNER_URL", owner_url, "owner"),
        DatabaseLogin("DATABASE_URL", service_url, "service"),
    )
    await migrate(owner_url, roles.service)


@pytest.fixture(scope="session")
def template_database(server_url: str, ledger_roles: LedgerRoles) -> Iterator[str]:
    """A database migrated once with the real migrations, as the owner, with the service's grants;
    every test clones it (grants and default privileges are part of the copy)."""
    name = f"sl_template_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_set_up_ledger(server_url, name, ledger_roles))
    except OSError as exc:
        _unavailable("PostgreSQL", exc)
    try:
        yield name
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(server_url: str, template_database: str, ledger_roles: LedgerRoles) -> AsyncIterator[str]:
    """This test's database, as the superuser: for the test's own set-up, checks and clean-up."""
    name = f"sl_test_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}" OWNER "{ledger_roles.owner}"')
    try:
        yield _db_url(server_url, name)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def service_database_url(database_url: str, ledger_roles: LedgerRoles) -> str:
    """This test's database as the service's role: what the service and the commands under test use."""
    return login_url(database_url, ledger_roles.service, ledger_roles.password)


@pytest.fixture
def owner_database_url(database_url: str, ledger_roles: LedgerRoles) -> str:
    return login_url(database_url, ledger_roles.owner, ledger_roles.password)


@pytest.fixture
async def other_database(server_url: str) -> AsyncIterator[str]:
    """Another database on the same server, as another application would have."""
    name = f"sl_other_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield _db_url(server_url, name)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture
async def amqp_prefix(amqp_url: str) -> AsyncIterator[str]:
    """A name prefix for this test's exchanges and queues; everything under it is deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    yield prefix
    await delete_topology(amqp_url, prefix)


async def delete_topology(amqp_url: str, prefix: str) -> None:
    topology = build_topology(prefix)
    queues = [r.queue.name for r in topology.routes.values()] + [topology.dead_letter_queue.name]
    exchanges = [topology.ingest, topology.webhooks, topology.state, topology.dead_letter_exchange, topology.chatbot]
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in queues:
            channel = await connection.channel()
            await channel.queue_delete(name)
        for exchange in exchanges:
            channel = await connection.channel()
            await channel.exchange_delete(exchange.name)
    finally:
        await connection.close()


@pytest.fixture
def settings(service_database_url: str, amqp_url: str, amqp_prefix: str) -> Settings:
    """The service's configuration: its database URL is the service role's."""
    return Settings(
        database_url=service_database_url,
        amqp_url=amqp_url,
        amqp_prefix=amqp_prefix,
        projection_idle_poll_seconds=0.05,
        log_format="console",
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    """The service in this process, on this test's database and broker names, without dispatching chatbot
    tasks: on the wall clock, dispatching depends on the time of day (quiet hours). Tests that need it
    use `live_service` (quiet hours off) or drive the dispatcher with a fake clock."""
    svc = build_service(settings.model_copy(update={"chatbot_dispatch_enabled": False}))
    await svc.app.start()
    try:
        yield svc
    finally:
        await svc.app.stop()


@pytest.fixture
async def live_service(settings: Settings) -> AsyncIterator[Service]:
    """Dispatcher and relay on the wall clock, quiet hours off: a due task goes out whatever the time of day."""
    svc = build_service(settings.model_copy(update={"chatbot_quiet_hours": "off", "chatbot_poll_seconds": 0.1}))
    await svc.app.start()
    yield svc
    await svc.app.stop()


@pytest.fixture
async def worker_queue(
    live_service: Service, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue like the chatbot workers' on the live service's chatbot.topic; deleted afterwards."""
    from tests.integration.chatbot_support import bind_worker_queue

    async for queue in bind_worker_queue(amqp, live_service.topology.chatbot.name, f"workers-{uuid.uuid4().hex[:8]}"):
        yield queue


@pytest.fixture
async def amqp(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(amqp_url)
    yield connection
    await connection.close()


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) or "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


# Telemetry's in-memory exporters, for the unit and integration tests of service/telemetry.py.
@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()
