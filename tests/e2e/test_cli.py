"""The `sample-ledger` command as operators use it: real processes, real exit codes, real log lines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.settings import Settings
from tests.conftest import _admin
from tests.support import eventually, example, publish, scalar

CLI = [sys.executable, "-m", "service.ops.cli"]


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "AMQP_URL": settings.amqp_url,
        "AMQP_PREFIX": settings.amqp_prefix,
        "LOG_FORMAT": "json",
        **extra,
    }


def sample_ledger(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"sl_cli_{uuid.uuid4().hex[:10]}"
    yield make_url(server_url).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["migrate"],
        ["run"],
        ["demo"],
        ["status"],
        ["explain"],
        ["health"],
        ["projections"],
        ["projections", "rebuild"],
        ["projections", "list"],
        ["dead-letters"],
        ["dead-letters", "list"],
        ["dead-letters", "replay"],
    ],
)
def test_every_command_answers_help(command: list[str]) -> None:
    result = subprocess.run([*CLI, *command, "--help"], capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "usage: sample-ledger" in result.stdout


def test_replicas_migrating_at_once_all_succeed_and_create_the_database(
    fresh_database: str, settings: Settings
) -> None:
    env = cli_env(settings, DATABASE_URL=fresh_database)
    processes = [
        subprocess.Popen([*CLI, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=90) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert all("schema at head" in out for out, _ in outputs)
    again = sample_ledger("migrate", env=env)
    assert again.returncode == 0
    assert "schema at head" in again.stdout


def test_run_refuses_an_unmigrated_database_with_one_line(fresh_database: str, settings: Settings) -> None:
    result = sample_ledger("run", env=cli_env(settings, DATABASE_URL=fresh_database))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"sample-ledger: database does not exist (DATABASE_URL={fresh_database}): run `sample-ledger migrate` first"
    ]


def test_unreachable_database_is_one_line_without_the_password(settings: Settings) -> None:
    result = sample_ledger("migrate", env=cli_env(settings, DATABASE_URL="postgresql://app:s3cret@127.0.0.1:1/x"))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("sample-ledger: cannot reach PostgreSQL")
    assert "s3cret" not in line


def test_invalid_configuration_names_the_variable(settings: Settings) -> None:
    result = sample_ledger("migrate", env=cli_env(settings, CHATBOT_QUIET_HOURS="late"))
    assert result.returncode == 1
    assert "CHATBOT_QUIET_HOURS" in result.stderr


async def test_run_records_logs_as_json_and_stops_gracefully_on_sigterm(
    settings: Settings, engine: AsyncEngine, amqp: aio_pika.abc.AbstractConnection
) -> None:
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        env=cli_env(settings, TIKTOK_APP_SECRET="top-secret-value"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        exchange = f"{settings.amqp_prefix}ledger.ingest"
        queue = f"{settings.amqp_prefix}ledger.ingest.samples"
        await eventually(lambda: _consumers(amqp, queue), lambda n: n > 0, timeout=30)
        await publish(amqp, exchange, "samples.crawled", example("9_1"), message_id="e2e-batch")
        await eventually(lambda: scalar(engine, "SELECT count(*) FROM projections.samples"), lambda n: n == 3)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=40)
    assert process.returncode == 0, stderr.decode()[-2000:]
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    recorded = [line for line in lines if line["event"] == "message.recorded"]
    assert recorded
    assert recorded[0]["message_id"] == "e2e-batch"
    assert any(line["event"] == "service.stopped" for line in lines), stderr.decode()[-3000:]
    assert b"top-secret-value" not in stderr
    assert b"guest:guest" not in stderr


async def _consumers(amqp: aio_pika.abc.AbstractConnection, queue: str) -> int:
    """Consumers on `queue` (0 while it does not exist yet): publishing before that would be lost."""
    channel = await amqp.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.consumer_count or 0)
    except aio_pika.exceptions.ChannelClosed:
        return 0
    finally:
        if not channel.is_closed:
            await channel.close()


def test_a_link_template_with_unknown_placeholders_is_refused_at_start(settings: Settings) -> None:
    result = sample_ledger("migrate", env=cli_env(settings, SAMPLE_LINK_TEMPLATE="https://x/{sampleId}"))
    assert result.returncode == 1
    assert "SAMPLE_LINK_TEMPLATE may only use {sample_id}" in result.stderr


def test_status_exits_1_with_its_report_when_the_database_is_unreachable(settings: Settings) -> None:
    result = sample_ledger("status", env=cli_env(settings, DATABASE_URL="postgresql://app:s3cret@127.0.0.1:1/x"))
    assert result.returncode == 1
    assert "Consumers" in result.stdout
    assert "cannot reach PostgreSQL" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr


async def test_health_fails_a_projection_that_trails_the_log(settings: Settings, engine: AsyncEngine) -> None:
    from events.recorded import NewEvent
    from events.sample_events import CrawlBatchRecorded
    from service.eventstore import append_events

    async with engine.begin() as conn:  # recorded, but no runner is applying it
        await append_events(
            conn, [NewEvent(stream_id="s", event_type=CrawlBatchRecorded.type_name, data={}, metadata={})]
        )
    result = await asyncio.to_thread(sample_ledger, "health", "--max-lag", "0", env=cli_env(settings))
    assert result.returncode == 1
    assert "FAIL projection samples: 1 event(s) behind (limit 0)" in result.stdout


async def _log_at_revision_0003_spanning_a_power_of_ten(database_url: str) -> None:
    """A database as the release before the read-order fix left it, whose log's ids gain a digit."""
    from alembic import command

    from service.database import create_engine, ensure_database_exists
    from service.migrate import alembic_config
    from tests.integration.test_event_order import _insert_straddling, _power_of_ten_below_the_fence

    def upgrade_to_0003(connection: Any) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0003")

    await ensure_database_exists(database_url)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to_0003)
        await _insert_straddling(engine, await _power_of_ten_below_the_fence(engine), seed=3)
    finally:
        await engine.dispose()


def test_upgrading_a_log_that_spans_a_power_of_ten_asks_once_for_a_rebuild(
    fresh_database: str, settings: Settings
) -> None:
    asyncio.run(_log_at_revision_0003_spanning_a_power_of_ten(fresh_database))
    env = cli_env(settings, DATABASE_URL=fresh_database)

    upgraded = sample_ledger("migrate", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    advice = [line for line in upgraded.stdout.splitlines() if line.startswith("action needed:")]
    assert len(advice) == 1, upgraded.stdout
    assert "across a power of ten" in advice[0]
    assert "sample-ledger projections rebuild --all" in advice[0]
    assert "action needed" not in sample_ledger("migrate", env=env).stdout, "the advice is given once"

    rebuilt = sample_ledger("projections", "rebuild", "--all", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    _header, *listed = sample_ledger("projections", "list", env=env).stdout.splitlines()
    names = [line.split()[0] for line in listed]
    assert [line.split()[1] for line in rebuilt.stdout.splitlines() if line.startswith("projection ")] == names


def test_a_fresh_database_needs_no_rebuild(fresh_database: str, settings: Settings) -> None:
    migrated = sample_ledger("migrate", env=cli_env(settings, DATABASE_URL=fresh_database))
    assert migrated.returncode == 0, migrated.stderr
    assert "action needed" not in migrated.stdout
