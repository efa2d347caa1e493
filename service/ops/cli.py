"""`sample-ledger`: the operator's command line (docs/contract.md, "Command line")."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from pydantic import ValidationError

from service.database import redacted
from service.logging import configure_logging
from service.ops.explain import explain_sample
from service.ops.failures import CommandFailed, reason_for
from service.ops.maintenance import list_projections, rebuild_projection
from service.read_models import all_projections
from service.settings import Settings

log = structlog.get_logger("sample_ledger.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sample-ledger",
        description="Event-sourced ledger of TikTok Shop affiliate samples and their chatbot follow-ups. "
        "Configuration comes from the environment (DATABASE_URL, AMQP_URL, ...; see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "migrate",
        help="create the database if missing and upgrade its schema to the latest",
        description="Create the database named by DATABASE_URL when it does not exist, then "
        "apply every pending migration. Safe when several replicas run it at once.",
    )
    commands.add_parser(
        "run",
        help="run the service until SIGTERM/SIGINT, then stop gracefully",
        description="Consume the ledger exchanges, record events, keep projections up to date. "
        "On SIGTERM/SIGINT: stop taking messages, finish in-flight ones, ack nothing unfinished.",
    )
    demo = commands.add_parser(
        "demo",
        help="publish the bundled example messages to a running service and show what came out",
        description="A newcomer's first look: publishes examples/*.json to ledger.ingest (and one invalid "
        "message, to show dead-lettering) for a service started with `sample-ledger run`, waits for the "
        "projections, and prints what they now say. Safe to run twice: the message ids are fixed.",
    )
    demo.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the projections (30)")
    commands.add_parser(
        "status",
        help="consumers, projection lag, outbox backlog, dead letters, oldest open transaction",
        description="One screen for operators. Parts that cannot be reached say so instead of failing.",
    )
    explain = commands.add_parser(
        "explain",
        help="the whole story of one sample: events, status changes, schedules, tasks and why",
        description="Everything recorded about one sample, in order, with the reasons for what was and was not sent.",
    )
    explain.add_argument("sample", metavar="SAMPLE", help="a sample id, or REGION/PRODUCT_ID/CREATOR")
    dead = commands.add_parser(
        "dead-letters",
        help="inspect and replay dead letters",
        description="Inspect and replay the messages in ledger.dead.",
    )
    dead_commands = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    listing = dead_commands.add_parser(
        "list",
        help="dead letters with their reasons; the queue is left as it was",
        description="Show dead letters with reason, detail and origin. They stay in the queue.",
    )
    listing.add_argument("--limit", type=int, default=50, help="most messages to show (50)")
    replay = dead_commands.add_parser(
        "replay",
        help="send chosen dead letters back to where they came from",
        description="Republish chosen dead letters, unchanged and with their message id, to the exchange "
        "and routing key they came from; each leaves ledger.dead only after the broker confirmed it. "
        "With neither --id nor --reason, every dead letter (up to --limit) is replayed.",
    )
    replay.add_argument(
        "--id",
        action="append",
        dest="ids",
        metavar="ID",
        help="a message id as `dead-letters list` shows it (repeatable)",
    )
    replay.add_argument("--reason", help="only dead letters with this x-ledger-reason, e.g. handler_error")
    replay.add_argument("--limit", type=int, default=1000, help="most messages to replay (1000)")
    health = commands.add_parser(
        "health",
        help="exit 0 when broker, consumers, database and projection lag are fine",
        description="For container probes: checks the broker is reachable and every inbound queue has a "
        "consumer, the database is reachable, and no projection is more than --max-lag events behind. "
        "Prints one line per check; exits 1 when any fails.",
    )
    health.add_argument("--max-lag", type=int, default=10_000, help="most events a projection may trail (10000)")
    projections = commands.add_parser(
        "projections", help="projection maintenance", description="Projection maintenance."
    )
    projection_commands = projections.add_subparsers(dest="projection_command", required=True, metavar="ACTION")
    rebuild = projection_commands.add_parser(
        "rebuild",
        help="rebuild one projection from the log",
        description="Empty the projection's tables and apply the whole log again. Derived events are not "
        "appended twice and no chatbot task is re-emitted.",
    )
    which = rebuild.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="projection name (see `sample-ledger projections list`)")
    which.add_argument("--all", action="store_true", help="rebuild every projection, one after another")
    projection_commands.add_parser(
        "list",
        help="list projections with their checkpoints",
        description="List projections, their tables and checkpoints.",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid configuration: {problems} (see README, Configuration)")
    configure_logging(settings.log_format, settings.log_level)
    handlers: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "migrate": _migrate,
        "run": _run,
        "projections": _projections,
        "health": _health,
        "demo": _demo,
        "status": _status,
        "explain": _explain,
        "dead-letters": _dead_letters,
    }
    try:
        code = asyncio.run(handlers[args.command](settings, args))
    except CommandFailed as failure:
        _fail(str(failure))
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        _fail(reason_for(exc, settings))
    sys.exit(code)


def _fail(reason: str) -> None:
    print(f"sample-ledger: {reason}", file=sys.stderr)
    sys.exit(1)


async def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from service.migrate import migrate  # imported here so that `--help` does not load Alembic

    result = await migrate(settings.database_url)
    print(f"database {redacted(settings.database_url)}: {'created and ' if result.created else ''}schema at head")
    if result.advice:
        print(f"action needed: {result.advice}")
    return 0


async def _run(settings: Settings, _: argparse.Namespace) -> int:
    # Imported here so that `--help` does not load FastStream, Alembic and the whole composition root.
    from service.app import build_service
    from service.migrate import SchemaNotCurrent, check_schema_is_current

    try:
        await check_schema_is_current(settings.database_url)
    except SchemaNotCurrent as exc:
        raise CommandFailed(str(exc)) from exc
    service = build_service(settings)
    await service.run()
    return 0


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from service.ops.demo import run_demo  # imported here so that `--help` does not load FastStream

    return await run_demo(settings, wait_seconds=args.wait)


async def _status(settings: Settings, _: argparse.Namespace) -> int:
    from service.ops.status import status_report  # imported here so that `--help` does not load FastStream

    lines = await status_report(settings)
    for line in lines:
        print(line)
    # The report shows what it can; an unreachable broker or database still makes the command fail.
    return 1 if any("cannot reach" in line for line in lines) else 0


async def _explain(settings: Settings, args: argparse.Namespace) -> int:
    for line in await explain_sample(settings, args.sample):
        print(line)
    return 0


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here so that `--help` does not load FastStream.
    from service.ops.dead_letters import list_dead_letters, replay_dead_letters

    if args.dead_command == "list":
        for line in await list_dead_letters(settings, args.limit):
            print(line)
        return 0
    replayed, left = await replay_dead_letters(settings, args.ids, args.reason, args.limit)
    print(f"replayed {replayed} dead letter(s); {left} left in the dead-letter queue")
    return 0


async def _health(settings: Settings, args: argparse.Namespace) -> int:
    from service.ops.health import health  # imported here so that `--help` does not load FastStream

    checks = await health(settings, args.max_lag)
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1


async def _projections(settings: Settings, args: argparse.Namespace) -> int:
    if args.projection_command == "list":
        for line in await list_projections(settings):
            print(line)
        return 0
    names = [p.name for p in all_projections(settings)] if args.all else [args.name]
    for name in names:
        applied = await rebuild_projection(settings, name)
        print(f"projection {name} rebuilt: {applied} events applied")
    return 0


if __name__ == "__main__":
    main()
