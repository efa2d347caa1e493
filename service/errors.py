"""Which failures may pass if tried again (database down, deadlock) and which never will."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

from service.eventstore import StreamVersionConflict

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


def describe(exc: BaseException) -> str:
    """A short, secret-free description: the exception type and the first line of its message."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]
