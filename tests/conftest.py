"""Fixtures on real services: PostgreSQL and RabbitMQ from DATABASE_URL / AMQP_URL (CI and this
machine), else testcontainers where a Docker engine exists. Each test gets its own database, cloned
from a migrated template, and its own exchange/queue name prefix; both are removed afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.topology import build_topology
from service.app import Service, build_service
from service.database import create_engine
from service.logging import configure_logging
from service.migrate import migrate
from service.settings import Settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

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
    """A PostgreSQL server URL (any database on it); test databases are created beside it."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
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


async def _admin(server: str, *statements: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(server))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    """A database migrated once with the real migrations; every test clones it."""
    name = f"sl_template_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(migrate(_db_url(server_url, name)))
    except OSError as exc:
        _unavailable("PostgreSQL", exc)
    try:
        yield name
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"sl_test_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield _db_url(server_url, name)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
def settings(database_url: str, amqp_url: str, amqp_prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
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
