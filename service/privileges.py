"""What the service's role may do in the ledger's database (docs/operations.md, "Database roles").

`migrate` grants it after every upgrade, in the migration's transaction and under its lock, so that
replicas migrating at once do not race on the catalog. The policy is per schema, so the tables later
migrations add are covered without a change here; default privileges cover a table created outside
`migrate` (a bare `alembic upgrade`) until the next `migrate` applies the policy again.

- The log, `eventstore.events`: read and append. UPDATE, DELETE and TRUNCATE are refused for want of
  the privilege, before the append-only trigger is reached; the trigger stays as the second line.
- The rest of `eventstore` (the chatbot outbox): read and write.
- `projections`: read and write, and TRUNCATE, which `projections rebuild` empties them with. The
  role may DELETE every row anyway; TRUNCATE gives it no further power over the data.
- `public.alembic_version`: read, so that `run` can check the schema is at head.

Nothing else: the role owns nothing and may create nothing in these schemas, so it can run no DDL.
The policy is applied exactly: whatever an earlier version or a person granted beyond it is revoked.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

LOG_TABLE = "eventstore.events"
SCHEMA_VERSION_TABLE = "public.alembic_version"  # Alembic's, in the default schema

# Every table of the schema, now and later.
SCHEMA_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "eventstore": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "projections": ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"),
}
# Tables whose privileges differ from their schema's (or that live outside those schemas).
TABLE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    LOG_TABLE: ("SELECT", "INSERT"),
    SCHEMA_VERSION_TABLE: ("SELECT",),
}


class CannotGrant(Exception):
    """The policy cannot be applied; the subclass says why."""


class ServiceRoleMissing(CannotGrant):
    """The role the service connects as does not exist, so nothing can be granted to it."""

    def __init__(self, role: str) -> None:
        super().__init__(f"role {role} does not exist")
        self.role = role


class LedgerNotOwned(CannotGrant):
    """The migrating role does not own the ledger's tables, so its grants on them would do nothing
    (PostgreSQL only warns). The usual cause: a database set up by a superuser before the roles."""

    def __init__(self, role: str, tables: int, owners: str) -> None:
        super().__init__(f"role {role} does not own {tables} of the ledger's tables (owned by {owners})")
        self.role, self.tables, self.owners = role, tables, owners


@dataclass(frozen=True)
class ServicePrivileges:
    """What `migrate` did for the service's role."""

    role: str
    granted: bool  # False: the service's role is the one that migrates, and owns everything
    superuser: bool  # privileges do not limit a superuser, whatever is granted


def quote_ident(name: str) -> str:
    """A name as SQL reads it whatever it contains (role names come from URLs)."""
    return '"' + name.replace('"', '""') + '"'


def grant_statements(role: str) -> list[str]:
    """The policy for `role`, as statements that may run any number of times with the same result."""
    grantee = quote_ident(role)
    statements: list[str] = []
    for schema, privileges in SCHEMA_PRIVILEGES.items():
        granted = ", ".join(privileges)
        statements += [
            f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
            f"REVOKE CREATE ON SCHEMA {schema} FROM {grantee}",
            # Revoked first, so that the grants are the whole of it.
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {grantee}",
            f"GRANT {granted} ON ALL TABLES IN SCHEMA {schema} TO {grantee}",
            # No table uses a sequence of its own today (positions are identity columns, which need no
            # grant); a later bigserial column would need this.
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {grantee}",
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
            # For tables the migrating role creates from now on (without FOR ROLE: the current user).
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {grantee}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {granted} ON TABLES TO {grantee}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {grantee}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE ON SEQUENCES TO {grantee}",
        ]
    for table, privileges in TABLE_PRIVILEGES.items():
        statements += [
            f"REVOKE ALL ON {table} FROM {grantee}",
            f"GRANT {', '.join(privileges)} ON {table} TO {grantee}",
        ]
    return statements


_ROLE = text("SELECT rolsuper, rolname = current_user AS migrating FROM pg_roles WHERE rolname = :role")
# The database's owner may grant CONNECT; a migrating role that does not own it may not, and then the
# service relies on PUBLIC's CONNECT, which PostgreSQL grants by default.
_MAY_GRANT_CONNECT = text(
    "SELECT current_database(), has_database_privilege(current_database(), 'CONNECT WITH GRANT OPTION')"
)


# pg_has_role: the owner, a member of the owner's role, or a superuser may grant on a table.
_NOT_OWNED = text("""
    SELECT count(*), string_agg(DISTINCT pg_get_userbyid(c.relowner), ', ')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE (n.nspname = ANY(CAST(:schemas AS text[])) OR c.oid = to_regclass(:version_table))
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT pg_has_role(c.relowner, 'USAGE')
""")


async def grant_service_privileges(conn: AsyncConnection, role: str) -> ServicePrivileges:
    """Apply the policy to `role`, as the migrating role (which owns the schema)."""
    found = (await conn.execute(_ROLE, {"role": role})).first()
    if found is None:
        raise ServiceRoleMissing(role)
    superuser, migrating = bool(found[0]), bool(found[1])
    if migrating:
        return ServicePrivileges(role, granted=False, superuser=superuser)
    tables, owners = (
        await conn.execute(_NOT_OWNED, {"schemas": list(SCHEMA_PRIVILEGES), "version_table": SCHEMA_VERSION_TABLE})
    ).one()
    if tables:
        current = (await conn.execute(text("SELECT current_user"))).scalar_one()
        raise LedgerNotOwned(current, tables, owners)
    # exec_driver_sql: no bind-parameter parsing, which a ':' in a quoted role name would trip.
    for statement in grant_statements(role):
        await conn.exec_driver_sql(statement)
    database, may_grant_connect = (await conn.execute(_MAY_GRANT_CONNECT)).one()
    if may_grant_connect:
        await conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {quote_ident(role)}")
    return ServicePrivileges(role, granted=True, superuser=superuser)
