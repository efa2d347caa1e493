"""How an operator command fails: one line on stderr and exit code 1."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg
from aiormq.exceptions import AMQPError, AuthenticationError, ProbableAuthenticationError
from sqlalchemy.exc import DBAPIError

from service.database import DatabaseLogin, Purpose, redacted_amqp
from service.errors import describe
from service.settings import Settings


class CommandFailed(Exception):
    """Ends the command with exit code 1 and this one-line reason on stderr."""


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, what SQLAlchemy wrapped (`orig`) and what each was raised from, without repeats."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def postgres_error(exc: BaseException) -> asyncpg.PostgresError | None:
    """The server's own error behind `exc` (asyncpg's, with its SQLSTATE), if there is one."""
    return next((e for e in _chain(exc) if isinstance(e, asyncpg.PostgresError)), None)


def _server_message(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# What to do about a permission denied, by what the refused role is for (docs/operations.md, "Database roles").
_PERMISSION_ADVICE: dict[Purpose, str] = {
    "service": "`sample-ledger migrate` grants the service's role what it needs, and the service needs no more",
    "owner": "migrations need the role that owns the database and the ledger's schemas; "
    "`sample-ledger migrate --create-roles` (with DATABASE_ADMIN_URL) sets that up",
    "admin": "`--create-roles` needs a role that may create roles and databases and hand them over (a superuser)",
}


def database_reason(error: asyncpg.PostgresError, settings: Settings, login: DatabaseLogin | None = None) -> str | None:
    """The cause a SQLSTATE names, and what to do about it; None for any other SQLSTATE. Only a missing
    database is something `migrate` fixes (PostgreSQL, Appendix A "Error Codes"). `login` is the URL
    that was refused (the service's unless said otherwise)."""
    login = login or settings.service_login
    database = login.shown()
    user = login.role or "(the operating-system user)"
    said = _server_message(error)
    match error.sqlstate:
        case "3D000":  # invalid_catalog_name
            return f"database does not exist ({database}): run `sample-ledger migrate` first"
        case "28000" if "role" in said and "does not exist" in said:  # invalid_authorization_specification
            return (
                f"PostgreSQL has no role {user} ({database}): {said}; fix the user in {login.variable} "
                "or create the role (`sample-ledger migrate --create-roles` creates the owner's and the service's)"
            )
        case "28000":  # e.g. no pg_hba.conf entry
            return f"PostgreSQL refused the connection for user {user} ({database}): {said}; check pg_hba.conf"
        case "28P01":  # invalid_password
            return (
                f"PostgreSQL authentication failed for user {user} ({database}): check the password in {login.variable}"
            )
        case "42501":  # insufficient_privilege
            return f"permission denied for user {user} ({database}): {said}; {_PERMISSION_ADVICE[login.purpose]}"
    return None


def reason_for(exc: BaseException, settings: Settings, login: DatabaseLogin | None = None) -> str:
    """One line an operator can act on; URLs are shown with their passwords hidden. `login` is the
    database URL the failing work used (the service's unless said otherwise)."""
    login = login or settings.service_login
    database = login.shown()
    original = getattr(exc, "orig", None) or exc.__cause__ or exc
    if (server := postgres_error(exc)) is not None and (reason := database_reason(server, settings, login)):
        return reason
    broker = redacted_amqp(settings.amqp_url)
    if refused := next((e for e in _chain(exc) if isinstance(e, AuthenticationError | ProbableAuthenticationError)),
                       None):  # fmt: skip
        user = urlsplit(settings.amqp_url).username or "guest"
        return (
            f"authentication was refused by RabbitMQ at {broker} for user {user}: check the user and password "
            f"in AMQP_URL ({_server_message(refused).split(' - ')[0]})"
        )
    if isinstance(exc, AMQPError) or isinstance(original, AMQPError):
        return f"cannot reach RabbitMQ at {broker}: {describe(original)}"
    if isinstance(exc, OSError | DBAPIError) or isinstance(original, OSError):
        return f"cannot reach PostgreSQL ({database}): {describe(original)}"
    return f"failed: {describe(exc)}"
