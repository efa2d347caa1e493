"""What a newcomer meets on a first run, through the `sample-ledger` command as people type it: real
processes, stdout, stderr and exit codes. One test (or a few) per thing that went wrong once."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from events.identity import sample_id
from service.app import Service
from service.database import create_engine
from service.ops.demo import example_batches, sample_ids_of
from service.ops.failures import reason_for
from service.progress import projection_progress
from service.settings import Settings
from tests.conftest import _admin
from tests.e2e.test_cli import cli_env, sample_ledger
from tests.support import eventually, example, publish, scalar, service_projection
from tests.support import section as support_section

AMQP = aio_pika.abc.AbstractConnection
MIGRATE_ADVICE = "run `sample-ledger migrate` first"
PRODUCT, CREATOR = "1729600011122233344", "7492223334445556667"  # @techconbeto in example 9.2
TECHCONBETO = sample_id("MX", PRODUCT, CREATOR)


async def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, while this test's event loop keeps the service running."""
    return await asyncio.to_thread(sample_ledger, *args, env=env, timeout=timeout)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def log_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def with_user(database_url: str, user: str, database: str | None = None) -> str:
    url = make_url(database_url).set(username=user, password=None)
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


# 1. The database's real cause, from the SQLSTATE: only a missing database is `migrate`'s to fix.


@pytest.mark.parametrize("command", [["migrate"], ["run"], ["status"], ["projections", "list"]])
def test_a_missing_role_is_named_and_migrate_is_not_advised(settings: Settings, command: list[str]) -> None:
    role = f"sl_nobody_{uuid.uuid4().hex[:8]}"
    result = sample_ledger(*command, env=cli_env(settings, DATABASE_URL=with_user(settings.database_url, role)))
    assert result.returncode == 1, result
    said = result.stdout if command == ["status"] else one_line(result.stderr)  # status reports on stdout
    assert f'role "{role}" does not exist' in said
    assert f"PostgreSQL has no role {role}" in said
    assert "migrate` first" not in said
    assert "database does not exist" not in said


@pytest.mark.parametrize("command", [["run"], ["projections", "list"], ["explain", TECHCONBETO]])
def test_a_missing_database_and_only_that_advises_migrate(settings: Settings, command: list[str]) -> None:
    missing = make_url(settings.database_url).set(database=f"sl_missing_{uuid.uuid4().hex[:8]}")
    url = missing.render_as_string(hide_password=False)
    result = sample_ledger(*command, env=cli_env(settings, DATABASE_URL=url))
    assert result.returncode == 1
    shown = missing.render_as_string(hide_password=True)  # the service role's URL carries a password
    assert one_line(result.stderr) == f"sample-ledger: database does not exist (DATABASE_URL={shown}): {MIGRATE_ADVICE}"


@pytest.fixture
def role_without_privileges(server_url: str) -> Iterator[str]:
    """A login role that may connect (PUBLIC may) but owns and is granted nothing; dropped afterwards."""
    role = f"sl_noperm_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server_url, f'CREATE ROLE "{role}" LOGIN'))
    try:
        yield role
    finally:
        asyncio.run(_admin(server_url, f'DROP ROLE IF EXISTS "{role}"'))


def test_permission_denied_names_the_user_and_the_refusal(settings: Settings, role_without_privileges: str) -> None:
    role = role_without_privileges
    listing = sample_ledger("projections", "list",
                            env=cli_env(settings, DATABASE_URL=with_user(settings.database_url, role)))  # fmt: skip
    assert listing.returncode == 1
    line = one_line(listing.stderr)
    assert line.startswith(f"sample-ledger: permission denied for user {role} (DATABASE_URL=")
    assert "permission denied for schema projections" in line
    assert "migrate` first" not in line

    new_database = with_user(settings.database_url, role, database=f"sl_never_{uuid.uuid4().hex[:8]}")
    migrate = sample_ledger("migrate", env=cli_env(settings, DATABASE_URL=new_database))
    assert migrate.returncode == 1
    line = one_line(migrate.stderr)
    assert f"permission denied for user {role}" in line
    assert "permission denied to create database" in line


def _wrapped(error: Exception) -> DBAPIError:
    """As SQLAlchemy's asyncpg dialect raises it: a DBAPI error raised from the server's error."""
    try:
        try:
            raise error
        except Exception as cause:
            raise DBAPIError("SELECT 1", None, cause) from cause
    except DBAPIError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (asyncpg.InvalidPasswordError('password authentication failed for user "app"'),
         "PostgreSQL authentication failed for user app (DATABASE_URL=postgresql://app:***@db:5432/ledger): "
         "check the password in DATABASE_URL"),
        (asyncpg.InvalidAuthorizationSpecificationError('role "app" does not exist'),
         'PostgreSQL has no role app (DATABASE_URL=postgresql://app:***@db:5432/ledger): role "app" does not exist'),
        (asyncpg.InvalidAuthorizationSpecificationError('no pg_hba.conf entry for host "10.0.0.1", user "app"'),
         "PostgreSQL refused the connection for user app"),
        (asyncpg.InvalidCatalogNameError('database "ledger" does not exist'),
         f"database does not exist (DATABASE_URL=postgresql://app:***@db:5432/ledger): {MIGRATE_ADVICE}"),
        (asyncpg.InsufficientPrivilegeError("permission denied for table events"),
         "permission denied for user app (DATABASE_URL=postgresql://app:***@db:5432/ledger): permission denied "
         "for table events"),
        # Any other "does not exist" is not a missing database: said as the server said it.
        (asyncpg.UndefinedTableError('relation "projections.samples" does not exist'),
         'relation "projections.samples" does not exist'),
    ],
)  # fmt: skip
def test_each_sqlstate_gets_its_own_reason(error: Exception, expected: str) -> None:
    """28P01 cannot be caused on a server that trusts local connections, so the mapping is checked
    with the errors asyncpg raises, bare and wrapped as SQLAlchemy wraps them."""
    settings = Settings(database_url="postgresql://app:s3cret@db:5432/ledger")
    for raised in (error, _wrapped(error)):
        reason = reason_for(raised, settings)
        assert expected in reason, reason
        assert "s3cret" not in reason
        assert (MIGRATE_ADVICE in reason) == isinstance(error, asyncpg.InvalidCatalogNameError)
        assert ("database does not exist" in reason) == isinstance(error, asyncpg.InvalidCatalogNameError)


# 2. A bad URL is one line naming the variable and what is expected, whatever the command.


@pytest.mark.parametrize("command", [["migrate"], ["run"], ["dead-letters", "list"]])
@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("DATABASE_URL", "notaurl", "DATABASE_URL is not a URL"),
        ("DATABASE_URL", "", "DATABASE_URL is empty"),
        ("DATABASE_URL", "mysql://app:s3cret@db:3306/ledger", "DATABASE_URL has the scheme 'mysql', not PostgreSQL's"),
        ("DATABASE_URL", "postgresql://app:s3cret@db:port/ledger", "DATABASE_URL cannot be read"),
        ("AMQP_URL", "notaurl", "AMQP_URL is not a URL"),
        ("AMQP_URL", "", "AMQP_URL is empty"),
        ("AMQP_URL", "http://guest:s3cret@rabbit:5672/", "AMQP_URL has the scheme 'http'"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_variable(
    settings: Settings, command: list[str], variable: str, value: str, said: str
) -> None:
    started = time.monotonic()
    result = sample_ledger(*command, env=cli_env(settings, **{variable: value}))
    assert result.returncode == 1
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith(f"sample-ledger: invalid configuration: {said}")
    expected = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE" if variable == "DATABASE_URL" else "amqp://"
    assert f"expected {expected}" in line
    assert "s3cret" not in result.stderr
    assert time.monotonic() - started < 15, "nothing was tried with it"


# 3. `run` at start: a refused login fails at once; an outage is retried out loud, then given up.


def _with_password(amqp_url: str, password: str) -> str:
    parts = urlsplit(amqp_url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}"))


def test_run_with_a_wrong_rabbitmq_password_fails_at_once_saying_authentication_was_refused(
    settings: Settings,
) -> None:
    wrong = _with_password(settings.amqp_url, "wrong-pass")
    started = time.monotonic()
    result = sample_ledger("run", env=cli_env(settings, AMQP_URL=wrong), timeout=30)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr[-2000:]
    assert took < 10, f"took {took:.1f}s"
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sample-ledger: authentication was refused by RabbitMQ at ")
    assert "check the user and password in AMQP_URL" in last
    assert "wrong-pass" not in result.stderr
    assert not [line for line in log_lines(result.stderr) if line["event"] == "broker.connect_retry"]


def test_run_retries_an_unreachable_broker_out_loud_then_gives_up_with_one_line(settings: Settings) -> None:
    nowhere = "amqp://guest:s3cret@127.0.0.1:1/"  # nothing listens on port 1: connection refused
    started = time.monotonic()
    result = sample_ledger("run", env=cli_env(settings, AMQP_URL=nowhere, BROKER_STARTUP_SECONDS="3"), timeout=30)
    took = time.monotonic() - started
    assert result.returncode == 1
    assert 3 <= took < 15, took
    retries = [line for line in log_lines(result.stderr) if line["event"] == "broker.connect_retry"]
    assert len(retries) >= 2, result.stderr
    assert [r["attempt"] for r in retries] == list(range(1, len(retries) + 1))
    assert all(r["next_delay_seconds"] > 0 for r in retries)
    assert all(r["broker"] == "amqp://guest:***@127.0.0.1:1/" for r in retries)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sample-ledger: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/: ")
    assert "gave up after 3s" in last
    assert "s3cret" not in result.stderr


# 4 and 6. The demo names its samples and what to explain; it dead-letters its invalid message once.


async def test_demo_lists_every_sample_with_its_id_and_ends_with_an_explain_command(
    service: Service, settings: Settings
) -> None:
    env = cli_env(settings)
    first = await run_cli("demo", "--wait", "30", env=env)
    assert first.returncode == 0, first.stderr
    print(first.stdout)
    ids = sample_ids_of(example_batches())
    assert len(ids) == 10
    for sid in ids:
        assert sid in first.stdout, sid
    assert "Published 5 example crawl batches and 1 invalid message" in first.stdout
    *_, hint, command = first.stdout.strip().splitlines()
    assert hint.startswith("The whole story of one sample")
    suggested = re.fullmatch(r"  sample-ledger explain ([0-9a-f-]{36})", command)
    assert suggested is not None, command
    assert suggested.group(1) in ids
    assert "waiting for the service" in first.stderr, "progress goes to stderr"
    assert not log_lines(first.stderr), "no log lines without --verbose"

    story = await run_cli(*command.split()[1:], env=env)
    assert story.returncode == 0, story.stderr
    assert story.stdout.splitlines()[0] == f"Sample {suggested.group(1)}"

    again = await run_cli("demo", env=env)
    assert again.returncode == 0, again.stderr
    assert "Published 5 example crawl batches to" in again.stdout
    assert "demo-invalid is already in" in again.stdout
    assert "so it is not sent again" in again.stdout
    listed = await run_cli("dead-letters", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)["letters"]
    assert [letter["id"] for letter in letters] == ["demo-invalid"], "one dead letter however often the demo runs"


# 5. `explain` says why nothing happened.


def content_pending_page() -> dict[str, Any]:
    """Example 9.2 seen again four days later, techconbeto's sample now waiting for content."""
    later = copy.deepcopy(example("9_2"))
    later["rows"] = [{**later["rows"][0], "status": "Content pending", "extractedTime": "2026-04-25 12:00:00"}]
    return later


def section(stdout: str, title: str) -> list[str]:
    """The heading that starts with `title` and its indented lines."""
    lines = stdout.splitlines()
    return [next(line for line in lines if line.startswith(title)), *support_section(lines, title)]


async def test_explain_names_the_rule_and_marks_a_stale_observation_as_ignored(
    service: Service, amqp: AMQP, settings: Settings
) -> None:
    env = cli_env(settings)
    ingest, state = service.topology.ingest.name, service.topology.state.name
    await publish(amqp, ingest, "samples.crawled", example("9_2"), message_id="first-sighting")
    inbound = (
        "SELECT count(*) FROM eventstore.events WHERE event_type LIKE 'sample.%' AND stream_id NOT LIKE 'sample-%'"
    )

    async def settled(recorded: int) -> None:
        """`recorded` inbound events in the log, and every projection caught up with it."""
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            # Generous: on a shared server another session's long write can hold the projections' fence.
            await eventually(lambda: scalar(engine, inbound), lambda n: n == recorded, timeout=60)
            await eventually(lambda: _caught_up(engine), lambda ok: ok, timeout=60)
        finally:
            await engine.dispose()

    await settled(1)
    first = await run_cli("explain", TECHCONBETO, env=env)
    assert first.returncode == 0, first.stderr
    (_, none) = section(first.stdout, "Chatbot schedules")
    assert none.startswith("  none: (new) → shipped")
    assert "first sightings never trigger a message" in none
    assert "no status so far called for a message" not in first.stdout
    assert (
        section(first.stdout, "Chatbot tasks")[0]
        == "Chatbot tasks (nothing was sent: no schedule, see Chatbot schedules)"
    )

    await publish(amqp, ingest, "samples.crawled", content_pending_page(), message_id="moved-on")
    late = {"region": "MX", "platformProductId": PRODUCT, "platformCreatorId": CREATOR, "status": "Shipped",
            "observedAt": "2026-04-22T09:00:00Z", "source": "seller_monitor"}  # fmt: skip
    await publish(amqp, state, "sample.status_reported", late, message_id="late-report")
    await settled(3)

    story = await run_cli("explain", TECHCONBETO, env=env)
    assert story.returncode == 0, story.stderr
    print(story.stdout)
    events = section(story.stdout, "Events that mention it")
    (stale,) = [line for line in events if "inbound status report from seller_monitor: Shipped" in line]
    assert "IGNORED (stale): shipped observed 2026-04-22 09:00:00Z is older than the observation that wins: " \
           "content_pending observed 2026-04-25 12:00:00Z (#" in stale  # fmt: skip
    (moved,) = [line for line in events if "message moved-on" in line]
    assert "IGNORED" not in moved
    schedules = section(story.stdout, "Chatbot schedules")
    assert any("content_pending" in line and "pending, due" in line for line in schedules)
    assert section(story.stdout, "Chatbot tasks")[0].startswith("Chatbot tasks (nothing was sent yet: content_pending")

    as_json = await run_cli("explain", TECHCONBETO, "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["sample"]["sample_id"] == TECHCONBETO
    ignored = [e for e in document["events"] if e["ignored"]]
    assert [e["said"] for e in ignored] == ["inbound status report from seller_monitor: Shipped observed "
                                            "2026-04-22T09:00:00+00:00"]  # fmt: skip
    assert document["why_no_task"].startswith("nothing was sent yet")


async def _caught_up(engine: AsyncEngine) -> bool:
    """Every projection has applied every event (lag as `status` counts it, in the runner's order)."""
    async with engine.connect() as conn:
        projections = [service_projection(name) for name in ("samples", "catalog", "chatbot")]
        progress = await projection_progress(conn, projections)
    return all(row["lag"] == 0 and row["position"] is not None for row in progress)


# 6. Dead letters: a replay that matches nothing fails, a replay of everything is asked for.


async def _two_dead_letters(service: Service, amqp: AMQP, settings: Settings) -> None:
    ingest = service.topology.ingest.name
    await publish(amqp, ingest, "samples.crawled", b"{not json", message_id="poison-json")
    await publish(amqp, ingest, "samples.crawled", {"rows": [{"platformProductId": "1"}]}, message_id="poison-schema")

    async def waiting() -> int:
        channel = await amqp.channel()
        try:
            queue = await channel.declare_queue(service.topology.dead_letter_queue.name, passive=True)
            return int(queue.declaration_result.message_count or 0)
        finally:
            await channel.close()

    await eventually(waiting, lambda n: n == 2, timeout=60)


async def test_dead_letter_replay_says_what_matched_nothing_and_wants_a_filter_or_all(
    service: Service, amqp: AMQP, settings: Settings
) -> None:
    env = cli_env(settings)
    await _two_dead_letters(service, amqp, settings)

    nothing = await run_cli("dead-letters", "replay", "--id", "nosuch", env=env)
    assert nothing.returncode == 1
    assert nothing.stdout.strip() == "replayed 0 dead letter(s); 2 left in the dead-letter queue"
    assert one_line(nothing.stderr).startswith(
        f"sample-ledger: no dead letter in {service.topology.dead_letter_queue.name} matched --id nosuch"
    )
    wrong_reason = await run_cli("dead-letters", "replay", "--reason", "no_such_reason", env=env)
    assert wrong_reason.returncode == 1
    assert "matched --reason no_such_reason" in one_line(wrong_reason.stderr)

    unfiltered = await run_cli("dead-letters", "replay", env=env)
    assert unfiltered.returncode == 2
    assert "choose the dead letters with --id and/or --reason, or every one with --all" in unfiltered.stderr
    both = await run_cli("dead-letters", "replay", "--all", "--reason", "invalid_json", env=env)
    assert both.returncode == 2

    dry = await run_cli("dead-letters", "replay", "--all", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    header, *letters = dry.stdout.strip().splitlines()
    assert header.startswith("would replay 2 of the 2 dead letter(s)")
    assert "nothing was sent or removed" in header
    assert sorted(line.split()[0] for line in letters) == ["poison-json", "poison-schema"]
    dry_one = await run_cli("dead-letters", "replay", "--id", "poison-json", "--dry-run", env=env)
    assert dry_one.returncode == 0
    assert [line.split()[0] for line in dry_one.stdout.strip().splitlines()[1:]] == ["poison-json"]
    listed = await run_cli("dead-letters", "list", "--json", env=env)
    assert json.loads(listed.stdout)["waiting"] == 2, "a dry run changes nothing"

    replayed = await run_cli("dead-letters", "replay", "--id", "poison-json", "--id", "nosuch", env=env)
    assert replayed.returncode == 1
    assert replayed.stdout.startswith("replayed 1 dead letter(s)")
    assert one_line(replayed.stderr).endswith("matched --id nosuch (see `sample-ledger dead-letters list`)")


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["dead-letters", "list", "--limit", "0"], "argument --limit: must be 1 or more, got 0"),
        (["dead-letters", "replay", "--all", "--limit", "0"], "argument --limit: must be 1 or more, got 0"),
        (["health", "--max-lag", "-5"], "argument --max-lag: must be 0 or more, got -5"),
        (["health", "--max-lag", "many"], "argument --max-lag: 'many' is not a whole number"),
    ],
)
def test_nonsense_numbers_are_usage_errors(settings: Settings, command: list[str], said: str) -> None:
    result = sample_ledger(*command, env=cli_env(settings))
    assert result.returncode == 2
    assert said in result.stderr
    assert result.stdout == ""


# 7. Output for people and for scripts.


async def test_rebuild_says_what_its_number_means_and_logs_only_when_asked(
    service: Service, amqp: AMQP, settings: Settings
) -> None:
    env = cli_env(settings)
    await publish(amqp, service.topology.ingest.name, "samples.crawled", example("9_1"), message_id="batch")
    await _two_dead_letters(service, amqp, settings)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        batches = "SELECT count(*) FROM projections.crawl_batches"
        await eventually(lambda: scalar(engine, batches), lambda n: n == 1, timeout=60)
        in_log = await scalar(engine, "SELECT count(*) FROM eventstore.events")
        own = await scalar(
            engine, "SELECT count(*) FROM eventstore.events WHERE event_type = 'sample.crawl_batch_recorded'"
        )
    finally:
        await engine.dispose()

    quiet = await run_cli("projections", "rebuild", "samples", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.splitlines() == [
        f"projection samples rebuilt: applied {own} of the log's {in_log} events "
        "(the rest are other projections' types)"
    ]
    assert not log_lines(quiet.stderr), quiet.stderr
    assert "rebuilding projection samples [1/1]" in quiet.stderr, "progress, on stderr"

    verbose = await run_cli("projections", "rebuild", "samples", "--verbose", env=env)
    assert verbose.returncode == 0
    assert [line["event"] for line in log_lines(verbose.stderr)] == ["projection.rebuilt"]
    assert verbose.stdout == quiet.stdout

    replay = await run_cli("dead-letters", "replay", "--reason", "invalid_schema", env=env)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.strip() == "replayed 1 dead letter(s); 1 left in the dead-letter queue"
    assert not [line for line in log_lines(replay.stderr) if line["level"] == "info"]


async def test_json_documents_and_the_projection_list_header(service: Service, settings: Settings) -> None:
    env = cli_env(settings)
    listing = await run_cli("projections", "list", env=env)
    assert listing.returncode == 0
    header, *rows = listing.stdout.splitlines()
    assert header == "PROJECTION\tCHECKPOINT\tTABLES"
    assert [row.split("\t")[0] for row in rows] == ["samples", "catalog", "chatbot"]
    as_json = json.loads((await run_cli("projections", "list", "--json", env=env)).stdout)
    assert [p["name"] for p in as_json] == ["samples", "catalog", "chatbot"]
    assert "projections.samples" in as_json[0]["tables"]

    status = await run_cli("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["ok"] is True
    queues = document["broker"]["queues"]
    assert queues[f"{settings.amqp_prefix}ledger.ingest.samples"] == {"consumers": 1, "waiting": 0}
    assert [p["name"] for p in document["database"]["projections"]["projections"]] == ["samples", "catalog", "chatbot"]
    assert document["database"]["outbox"]["waiting"] == 0

    dead = json.loads((await run_cli("dead-letters", "list", "--json", env=env)).stdout)
    assert dead == {"queue": service.topology.dead_letter_queue.name, "waiting": 0, "letters": []}


def test_status_json_says_what_cannot_be_reached_and_exits_1(settings: Settings) -> None:
    env = cli_env(settings, DATABASE_URL="postgresql://app:s3cret@127.0.0.1:1/x")
    result = sample_ledger("status", "--json", env=env)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["database"]["reachable"] is False
    assert document["database"]["error"].startswith("cannot reach PostgreSQL")
    assert "s3cret" not in result.stdout + result.stderr


# 8. `make run` installs what running needs; `make test` and `make lint` everything.


@pytest.mark.parametrize(("target", "dev"), [("run", False), ("demo", False), ("test", True), ("lint", True)])
def test_make_installs_dev_tools_only_for_test_and_lint(target: str, dev: bool) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    root = Path(__file__).resolve().parents[2]
    planned = subprocess.run([make, "-n", target], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    syncs = [line for line in planned.stdout.splitlines() if " sync " in line]
    assert len(syncs) == 1, planned.stdout
    assert ("--no-dev" not in syncs[0]) == dev, syncs[0]
    assert "pip install --quiet uv" in planned.stdout, "the uv bootstrap stays"
    runs = [line for line in planned.stdout.splitlines() if " run " in line]
    if not dev:
        assert all("--no-sync" in line for line in runs), "plain `uv run` would install the dev group"
