"""How an operator command fails: one line on stderr and exit code 1."""

from __future__ import annotations

import asyncpg
from aiormq.exceptions import AMQPError
from sqlalchemy.exc import DBAPIError

from service.database import redacted, redacted_amqp
from service.errors import describe
from service.settings import Settings


class CommandFailed(Exception):
    """Ends the command with exit code 1 and this one-line reason on stderr."""


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
