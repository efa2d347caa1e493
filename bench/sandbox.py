"""A place of the benchmark's own, removed at the end: fresh databases (`bench_<random>…`) on the
server DATABASE_URL names, migrated by the service's own `migrate`, and a fresh RabbitMQ vhost made
with rabbitmqctl. Where rabbitmqctl is missing, refuses or manages another machine, a random name
prefix on the vhost AMQP_URL names takes its place, and the report says so."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import asyncpg
from sqlalchemy import make_url

REPOSITORY = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass
class Sandbox:
    server_url: str  # DATABASE_URL as given; its database is never touched
    amqp_url: str  # AMQP_URL with our vhost, when we have one
    prefix: str  # empty on our own vhost
    isolation: str  # one line for the report: where the broker names live
    name: str  # bench_<random>
    databases: list[str] = field(default_factory=list)

    def database_url(self, database: str) -> str:
        return make_url(self.server_url).set(database=database).render_as_string(hide_password=False)

    async def new_database(self, suffix: str = "") -> str:
        """CREATE DATABASE, then `sample-ledger migrate` on it, as an operator would; its URL."""
        database = f"{self.name}_{suffix}" if suffix else self.name
        await _admin(self.server_url, f'CREATE DATABASE "{database}"')
        self.databases.append(database)
        url = self.database_url(database)
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.ops.cli", "migrate", cwd=REPOSITORY,
            env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await migrate.communicate()
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed on {database}: {output.decode(errors='replace')[-2000:]}")
        return url


def _admin_dsn(server_url: str) -> str:
    return make_url(server_url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(server_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=120)  # noqa: S603 (fixed program, our args)


def _with_vhost(amqp_url: str, vhost: str) -> str:
    parts = urlsplit(amqp_url)
    return parts._replace(path="/" + quote(vhost, safe="")).geturl()


def _own_vhost(amqp_url: str, vhost: str) -> str | None:
    """Create `vhost` with the URL's user allowed everything in it; None (and why) when we cannot."""
    parts = urlsplit(amqp_url)
    if parts.hostname not in LOCAL_HOSTS:
        return f"RabbitMQ at {parts.hostname} is not on this machine"
    if shutil.which("rabbitmqctl") is None and not Path("/usr/sbin/rabbitmqctl").exists():
        return "rabbitmqctl is not installed"
    try:
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, unquote(parts.username or "guest"), ".*", ".*", ".*")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        return f"rabbitmqctl failed ({stderr.decode(errors='replace').strip()[:200] or exc})"
    return None


@asynccontextmanager
async def sandbox(database_url: str, amqp_url: str) -> AsyncIterator[Sandbox]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    why_not = await asyncio.to_thread(_own_vhost, amqp_url, name)
    if why_not is None:
        box = Sandbox(database_url, _with_vhost(amqp_url, name), "", f"own vhost {name} (rabbitmqctl)", name)
    else:
        vhost = unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"
        box = Sandbox(database_url, amqp_url, f"{name}.", f"prefix {name}. on vhost {vhost}: {why_not}", name)
    try:
        yield box
    finally:
        for database in box.databases:
            await _admin(database_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if box.prefix:
            from tests.conftest import delete_topology  # the test suite's clean-up of a prefix's names

            await delete_topology(box.amqp_url, box.prefix)
        else:
            await asyncio.to_thread(_rabbitmqctl, "delete_vhost", name)
