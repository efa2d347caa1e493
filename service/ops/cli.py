"""`sample-ledger`: the operator's command line (docs/contract.md, "Command line")."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from service.database import DatabaseLogin, redacted
from service.logging import configure_logging
from service.ops.explain import explain_document, explain_sample
from service.ops.failures import CommandFailed, reason_for
from service.ops.maintenance import list_projections, projection_named, projection_rows, rebuild_one
from service.ops.output import Progress, print_json
from service.read_models import all_projections
from service.settings import Settings

log = structlog.get_logger("sample_ledger.cli")
T = TypeVar("T")


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than `minimum` (a usage error otherwise, exit 2)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {number}")
        return number

    parse.__name__ = "number"  # argparse names the type in its messages
    return parse


def _common() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log at LOG_LEVEL (operator commands other than `run` log only warnings and errors by default)",
    )
    return common


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the text report")


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="sample-ledger",
        description="Event-sourced ledger of TikTok Shop affiliate samples and their chatbot follow-ups. "
        "Configuration comes from the environment (DATABASE_URL, AMQP_URL, ...; see README).",
        parents=[common],
    )
    parser.set_defaults(verbose=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    migrate = commands.add_parser(
        "migrate",
        help="create the database if missing, upgrade its schema to the latest, grant the service its privileges",
        description="Connect as the owner (DATABASE_OWNER_URL, else DATABASE_URL), create the database when it "
        "does not exist, apply every pending migration, then grant the role DATABASE_URL names what the service "
        "needs and nothing more: read and append the log, write the outbox and the projections. Safe when several "
        "replicas run it at once.",
        parents=[common],
    )
    migrate.add_argument(
        "--create-roles",
        action="store_true",
        help="first, as DATABASE_ADMIN_URL (a superuser; else the owner), create the owner's and the service's "
        "roles when missing (with the passwords their URLs carry), create the database owned by the owner, and "
        "hand the owner whatever of the ledger another role owns (a deployment set up by a superuser)",
    )
    commands.add_parser(
        "run",
        help="run the service until SIGTERM/SIGINT, then stop gracefully",
        description="Consume the ledger exchanges, record events, keep projections up to date. "
        "On SIGTERM/SIGINT: stop taking messages, finish in-flight ones, ack nothing unfinished. "
        "At start a refused RabbitMQ login fails at once; an unreachable broker is retried, each retry "
        "logged, for BROKER_STARTUP_SECONDS (30). Exits 0 after a stop, 1 when it cannot start, and 3 "
        "when an inbound queue's consumer stopped receiving (e.g. the queue was deleted and declared "
        "again) so that a supervisor starts it again.",
        parents=[common],
    )
    demo = commands.add_parser(
        "demo",
        help="publish the bundled example messages to a running service and show what came out",
        description="A newcomer's first look: publishes examples/*.json to ledger.ingest (and one invalid "
        "message, to show dead-lettering) for a service started with `sample-ledger run`, waits for the "
        "projections, and prints every demo sample with its id and the `sample-ledger explain` command to try "
        "next. Safe to run twice: the message ids are fixed, and the invalid message is not sent again while "
        "its dead letter is in ledger.dead. Progress goes to stderr.",
        parents=[common],
    )
    demo.add_argument(
        "--wait", type=float, default=30.0, metavar="SECONDS", help="seconds to wait for the projections (30)"
    )
    status = commands.add_parser(
        "status",
        help="consumers, projection lag, outbox backlog, dead letters, oldest open transaction",
        description="One screen for operators. Parts that cannot be reached say so instead of failing; "
        "exits 1 when the broker or the database cannot be reached. Open transactions of roles that "
        "DATABASE_URL's role may not see in full (without pg_read_all_stats) are counted, not shown.",
        parents=[common],
    )
    _json_option(status)
    explain = commands.add_parser(
        "explain",
        help="the whole story of one sample: events, status changes, schedules, tasks and why",
        description="Everything recorded about one sample, in order, with the reasons for what was and was not "
        "sent: stale observations are marked as ignored, and a status change that scheduled nothing names the rule.",
        parents=[common],
    )
    explain.add_argument("sample", metavar="SAMPLE", help="a sample id, or REGION/PRODUCT_ID/CREATOR")
    _json_option(explain)
    dead = commands.add_parser(
        "dead-letters",
        help="inspect and replay dead letters",
        description="Inspect and replay the messages in ledger.dead.",
        parents=[common],
    )
    dead_commands = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    listing = dead_commands.add_parser(
        "list",
        help="dead letters with their reasons; the queue is left as it was",
        description="Show dead letters with reason, detail and origin. They stay in the queue.",
        parents=[common],
    )
    listing.add_argument(
        "--limit", type=_at_least(1), default=50, metavar="N", help="most messages to show, 1 or more (50)"
    )
    _json_option(listing)
    replay = dead_commands.add_parser(
        "replay",
        help="send chosen dead letters back to where they came from",
        description="Republish chosen dead letters, unchanged and with their message id, to the exchange "
        "and routing key they came from; each leaves ledger.dead only after the broker confirmed it. "
        "Choose them with --id and/or --reason, or every one with --all. Exits 1, after replaying what "
        "matched, when an --id or --reason matched no dead letter.",
        parents=[common],
    )
    replay.add_argument(
        "--id",
        action="append",
        dest="ids",
        metavar="ID",
        help="a message id as `dead-letters list` shows it (repeatable)",
    )
    replay.add_argument("--reason", metavar="R", help="only dead letters with this x-ledger-reason, e.g. handler_error")
    replay.add_argument("--all", action="store_true", help="every dead letter (up to --limit); not with --id/--reason")
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    replay.add_argument("--limit", type=_at_least(1), default=1000, metavar="N", help="most messages to replay (1000)")
    replay.set_defaults(usage_error=replay.error)  # for `_check`: the message then shows this usage
    health = commands.add_parser(
        "health",
        help="exit 0 when broker, consumers, database and projection lag are fine",
        description="For container probes: checks the broker is reachable and every inbound queue has a "
        "consumer, the database is reachable, and no projection is more than --max-lag events behind. "
        "Prints one line per check; exits 1 when any fails.",
        parents=[common],
    )
    health.add_argument(
        "--max-lag",
        type=_at_least(0),
        default=10_000,
        metavar="N",
        help="most events a projection may trail, 0 or more (10000)",
    )
    projections = commands.add_parser(
        "projections", help="projection maintenance", description="Projection maintenance.", parents=[common]
    )
    projection_commands = projections.add_subparsers(dest="projection_command", required=True, metavar="ACTION")
    rebuild = projection_commands.add_parser(
        "rebuild",
        help="rebuild one projection from the log",
        description="Empty the projection's tables and apply the whole log again, as DATABASE_URL's role (the "
        "service's: `migrate` grants it TRUNCATE on the projection tables). Derived events are not "
        "appended twice and no chatbot task is re-emitted. Says how many of the log's events it applied "
        "(only its own types); progress goes to stderr.",
        parents=[common],
    )
    which = rebuild.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="projection name (see `sample-ledger projections list`)")
    which.add_argument("--all", action="store_true", help="rebuild every projection, one after another")
    listing = projection_commands.add_parser(
        "list",
        help="list projections with their checkpoints",
        description="List projections, their checkpoints and tables, after a header line.",
        parents=[common],
    )
    _json_option(listing)
    return parser


def _check(args: argparse.Namespace) -> None:
    """What argparse cannot say by itself: usage errors, exit 2."""
    if args.command == "dead-letters" and args.dead_command == "replay":
        if args.all and (args.ids or args.reason is not None):
            args.usage_error("--all replays every dead letter; do not combine it with --id or --reason")
        if not (args.all or args.ids or args.reason is not None):
            args.usage_error("choose the dead letters with --id and/or --reason, or every one with --all")


def _log_level(settings: Settings, args: argparse.Namespace) -> str:
    """`run` logs at LOG_LEVEL; the operator commands only warnings and errors unless --verbose, so
    their log lines do not interleave with what they print."""
    if args.command == "run" or args.verbose:
        return settings.log_level
    configured = logging.getLevelName(settings.log_level.upper())
    return settings.log_level if isinstance(configured, int) and configured > logging.WARNING else "WARNING"


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    _check(args)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        _fail(f"invalid configuration: {problems} (see README, Configuration)")
    configure_logging(settings.log_format, _log_level(settings, args))
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


def _problem(location: tuple[int | str, ...], message: str) -> str:
    """One setting's problem, named by its variable (pydantic never gets to quote the value here)."""
    variable = ".".join(map(str, location)).upper()
    message = message.removeprefix("Value error, ")
    return message if message.startswith(variable) else f"{variable}: {message}"


def _fail(reason: str) -> None:
    print(f"sample-ledger: {reason}", file=sys.stderr)
    sys.exit(1)


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here so that `--help` does not load Alembic.
    from service.migrate import migrate
    from service.ops.database_roles import ROLES_DOCS, privileges_line, set_up_roles
    from service.privileges import LedgerNotOwned, ServiceRoleMissing

    owner, service = settings.owner_login, settings.service_login
    if args.create_roles:
        admin = settings.admin_login
        setup = await _as(admin, settings, set_up_roles(admin, owner, service))
        for line in setup.lines():
            print(line)
    try:
        result = await _as(owner, settings, migrate(owner.url, service.role))
    except ServiceRoleMissing as missing:
        raise CommandFailed(
            f"PostgreSQL has no role {missing.role} ({service.shown()}), which the service connects as: create it, "
            f"or let `sample-ledger migrate --create-roles` create it ({ROLES_DOCS})"
        ) from missing
    except LedgerNotOwned as not_owned:
        raise CommandFailed(
            f"{not_owned} ({owner.shown()}), so it cannot grant the service's role what it needs: hand them over "
            f"once with `sample-ledger migrate --create-roles` and DATABASE_ADMIN_URL ({ROLES_DOCS})"
        ) from not_owned
    print(f"database {redacted(owner.url)}: {'created and ' if result.created else ''}schema at head")
    if result.privileges is not None:
        print(privileges_line(result.privileges, service))
    if result.advice:
        print(f"action needed: {result.advice}")
    return 0


async def _as(login: DatabaseLogin, settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result; a failure is said naming the URL it connected with (`login`), not DATABASE_URL."""
    from service.privileges import CannotGrant

    try:
        return await work
    except (CommandFailed, CannotGrant):  # said already, or said by the caller
        raise
    except Exception as exc:
        raise CommandFailed(reason_for(exc, settings, login)) from exc


async def _run(settings: Settings, _: argparse.Namespace) -> int:
    # Imported here so that `--help` does not load FastStream, Alembic and the whole composition root.
    from service.app import build_service
    from service.migrate import SchemaNotCurrent, check_schema_is_current

    try:
        await check_schema_is_current(settings.database_url)
    except SchemaNotCurrent as exc:
        raise CommandFailed(str(exc)) from exc
    service = build_service(settings)
    return await service.run()


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from service.ops.demo import run_demo  # imported here so that `--help` does not load FastStream

    return await run_demo(settings, wait_seconds=args.wait, progress=Progress())


async def _status(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here so that `--help` does not load FastStream.
    from service.ops.status import status_document, status_lines

    document = await status_document(settings)
    if args.json:
        print_json(document)
    else:
        for line in status_lines(document, settings):
            print(line)
    # The report shows what it can; an unreachable broker or database still makes the command fail.
    return 0 if document["ok"] else 1


async def _explain(settings: Settings, args: argparse.Namespace) -> int:
    if args.json:
        print_json(await explain_document(settings, args.sample))
        return 0
    for line in await explain_sample(settings, args.sample):
        print(line)
    return 0


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here so that `--help` does not load FastStream.
    from service.ops.dead_letters import dead_letters_document, list_dead_letters, replay

    if args.dead_command == "list":
        if args.json:
            print_json(await dead_letters_document(settings, args.limit))
        else:
            for line in await list_dead_letters(settings, args.limit):
                print(line)
        return 0
    done = await replay(settings, args.ids, args.reason, args.limit, dry_run=args.dry_run)
    if args.dry_run:
        print(f"would replay {len(done.chosen)} of the {done.waiting} dead letter(s) in {done.queue} (dry run: "
              "nothing was sent or removed)")  # fmt: skip
        for letter in done.chosen:
            print(letter.line())
    else:
        print(f"replayed {done.replayed} dead letter(s); {done.left} left in the dead-letter queue")
    if unmatched := done.unmatched(args.ids, args.reason):
        raise CommandFailed(
            f"no dead letter in {done.queue} matched {unmatched} (see `sample-ledger dead-letters list`)"
        )
    return 0


async def _health(settings: Settings, args: argparse.Namespace) -> int:
    from service.ops.health import health  # imported here so that `--help` does not load FastStream

    checks = await health(settings, args.max_lag)
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1


async def _projections(settings: Settings, args: argparse.Namespace) -> int:
    if args.projection_command == "list":
        if args.json:
            print_json(await projection_rows(settings))
        else:
            for line in await list_projections(settings):
                print(line)
        return 0
    names = [p.name for p in all_projections(settings)] if args.all else [args.name]
    progress = Progress()
    for number, name in enumerate(names, 1):
        projection_named(settings, name)  # an unknown name fails before anything is emptied
        async with progress.ticking(f"rebuilding projection {name} [{number}/{len(names)}]"):
            rebuilt = await rebuild_one(settings, name)
        print(rebuilt.line())
    return 0


if __name__ == "__main__":
    main()
