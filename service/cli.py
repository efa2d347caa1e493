"""`sample-ledger`: the operator's command line (CONTRACT.md, "Command line")."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
import structlog
from aiormq.exceptions import AMQPError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from service.database import redacted, redacted_amqp
from service.errors import describe
from service.logging import configure_logging
from service.settings import Settings

log = structlog.get_logger("sample_ledger.cli")


class CommandFailed(Exception):
    """Ends the command with exit code 1 and this one-line reason on stderr."""


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
    rebuild.add_argument("name", help="projection name (see `sample-ledger projections list`)")
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


def reason_for(exc: BaseException, settings: Settings) -> str:
    """One line an operator can act on; URLs are shown with their passwords hidden."""
    database = f"DATABASE_URL={redacted(settings.database_url)}"
    original = getattr(exc, "orig", None) or exc.__cause__ or exc
    if isinstance(original, asyncpg.InvalidCatalogNameError) or "does not exist" in str(original):
        return f"database does not exist ({database}): run `sample-ledger migrate` first"
    if isinstance(exc, AMQPError) or isinstance(original, AMQPError):
        return f"cannot reach RabbitMQ at {redacted_amqp(settings.amqp_url)}: {describe(original)}"
    if isinstance(exc, OSError | DBAPIError) or isinstance(original, OSError):
        return f"cannot reach PostgreSQL ({database}): {describe(original)}"
    return f"failed: {describe(exc)}"


def _fail(reason: str) -> None:
    print(f"sample-ledger: {reason}", file=sys.stderr)
    sys.exit(1)


async def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from service.migrate import migrate

    created = await migrate(settings.database_url)
    print(f"database {redacted(settings.database_url)}: {'created and ' if created else ''}schema at head")
    return 0


async def _run(settings: Settings, _: argparse.Namespace) -> int:
    from service.app import build_service
    from service.migrate import check_schema_is_current

    await check_schema_is_current(settings.database_url)
    service = build_service(settings)
    await service.run()
    return 0


async def _health(settings: Settings, args: argparse.Namespace) -> int:
    from service.health import health

    checks = await health(settings, args.max_lag)
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1


async def _projections(settings: Settings, args: argparse.Namespace) -> int:
    from service.maintenance import list_projections, rebuild_projection

    if args.projection_command == "list":
        for line in await list_projections(settings):
            print(line)
        return 0
    applied = await rebuild_projection(settings, args.name)
    print(f"projection {args.name} rebuilt: {applied} events applied")
    return 0


if __name__ == "__main__":
    main()
