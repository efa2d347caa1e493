"""Which failures may pass if tried again (database down, deadlock) and which never will."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

from handlers.delivery import describe
from service.eventstore import StreamVersionConflict

__all__ = ["describe", "is_transient"]  # describe lives with the handlers, which must not import service

# SQLSTATE classes and codes worth retrying: connection trouble, serialization failures, deadlocks,
# the server shutting down or out of connections.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57P")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, StreamVersionConflict | OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        return _transient_sqlstate(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None))
    if isinstance(exc, asyncpg.PostgresError):
        return _transient_sqlstate(getattr(exc, "sqlstate", None))
    return False


def _transient_sqlstate(code: str | None) -> bool:
    return bool(code) and str(code).startswith(_TRANSIENT_SQLSTATE_PREFIXES)
