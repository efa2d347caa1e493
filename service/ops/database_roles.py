"""`sample-ledger migrate --create-roles`: what an administrator sets up before the owner migrates
(docs/operations.md, "Database roles"). Every step is idempotent, so `--create-roles` may run on
every deployment.

1. The owner's and the service's roles, named by DATABASE_OWNER_URL and DATABASE_URL, when missing:
   LOGIN, with the password their URL carries (sent as a SCRAM verifier, never as text), nothing
   else. A role that exists is left as it is.
   And `ledger_analyst`, the group role (NOLOGIN) the migrations grant read access on every table
   to: the owner has no CREATEROLE, so it could not create it on a fresh server.
2. The database, owned by the owner: created when missing, handed to the owner when another owns it.
3. What another role owns of the ledger, handed to the owner: the ledger's schemas and everything in
   them, Alembic's version table, and the default privileges that role set there (the analysts' read
   grant on new tables). This is how a deployment set up by a superuser, as before the roles, moves
   to them: the owner may then migrate it and grant the service its privileges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy import make_url

from service.database import CREATE_DATABASE_LOCK_ID, DatabaseLogin
from service.ops.failures import CommandFailed
from service.ops.password_verifier import scram_sha_256
from service.privileges import SCHEMA_PRIVILEGES, SCHEMA_VERSION_TABLE, ServicePrivileges, quote_ident

LEDGER_SCHEMAS = tuple(SCHEMA_PRIVILEGES)
MAINTENANCE_DATABASE = "postgres"  # where a role that creates databases connects first
ANALYST_ROLE = "ledger_analyst"  # the migrations grant it SELECT on every table (docs/operations.md)
ROLES_DOCS = 'docs/operations.md, "Database roles"'


@dataclass(frozen=True)
class LedgerObject:
    """Something in the ledger's database that has an owner: `kind` as ALTER names it."""

    kind: str  # SCHEMA, TABLE, VIEW, MATERIALIZED VIEW, SEQUENCE, FOREIGN TABLE, ROUTINE, TYPE
    name: str  # as SQL reads it (quoted, qualified)
    owner: str


@dataclass(frozen=True)
class DefaultPrivilege:
    """One grant of a role's default privileges in a schema (pg_default_acl, exploded)."""

    schema: str
    objects: str  # TABLES, SEQUENCES, FUNCTIONS, TYPES
    grantee: str | None  # None: PUBLIC
    privilege: str
    grantable: bool


@dataclass
class RoleSetup:
    """What `--create-roles` did, for the operator."""

    owner: DatabaseLogin
    service: DatabaseLogin
    created_roles: list[str] = field(default_factory=list)
    database_created: bool = False
    database_previous_owner: str | None = None
    handed_over: Counter[str] = field(default_factory=Counter)  # previous owner -> objects

    def lines(self) -> list[str]:
        lines = []
        for login in (self.owner, self.service):
            done = "created" if login.role in self.created_roles else "exists, left as it was"
            lines.append(f"role {login.role} (the {login.purpose}, {login.variable}): {done}")
        analysts = "created" if ANALYST_ROLE in self.created_roles else "exists, left as it was"
        lines.append(f"role {ANALYST_ROLE} (the analysts' read-only group, no login): {analysts}")
        database, owner = self.owner.database, self.owner.role
        if self.database_created:
            lines.append(f"database {database}: created, owned by {owner}")
        elif self.database_previous_owner is not None:
            lines.append(f"database {database}: handed from {self.database_previous_owner} to {owner}")
        for previous, count in sorted(self.handed_over.items()):
            lines.append(f"database {database}: {count} objects of the ledger handed from {previous} to {owner}")
        return lines


def roles_to_set_up(owner: DatabaseLogin, service: DatabaseLogin) -> tuple[str, str]:
    """The owner's and the service's role names; refused unless they are two named, different roles."""
    if owner.variable == service.variable:
        raise CommandFailed(
            "--create-roles sets up the owner's role and the service's: set DATABASE_OWNER_URL to the owner's URL "
            f"(DATABASE_URL is the service's; {ROLES_DOCS})"
        )
    if owner.role is None or service.role is None:
        unnamed = owner if owner.role is None else service
        raise CommandFailed(f"--create-roles needs the role's name in {unnamed.variable}, which names no user")
    if owner.role == service.role:
        raise CommandFailed(
            f"--create-roles sets up two roles, but {owner.variable} and {service.variable} both name {owner.role}: "
            f"give the owner a role of its own ({ROLES_DOCS})"
        )
    return owner.role, service.role


def create_role_statement(role: str, password: str | None) -> str:
    """A login role with nothing else (no superuser, no CREATEDB, no CREATEROLE: the defaults)."""
    statement = f"CREATE ROLE {quote_ident(role)} LOGIN"
    if password:
        # The verifier is base64, digits and `$:`, so it needs no escaping; the password stays here.
        statement += f" PASSWORD '{scram_sha_256(password)}'"
    return statement


def hand_over_statements(objects: Sequence[LedgerObject], owner: str) -> list[str]:
    return [f"ALTER {o.kind} {o.name} OWNER TO {quote_ident(owner)}" for o in objects]


def default_privilege_statements(grants: Sequence[DefaultPrivilege], owner: str) -> list[str]:
    """The same default privileges, for the owner: tables it creates get what the previous owner's got."""
    return [
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(owner)} IN SCHEMA {quote_ident(g.schema)} "
        f"GRANT {g.privilege} ON {g.objects} TO {_grantee(g)}"
        for g in grants
    ]


def _grantee(grant: DefaultPrivilege) -> str:
    grantee = "PUBLIC" if grant.grantee is None else quote_ident(grant.grantee)
    return f"{grantee} WITH GRANT OPTION" if grant.grantable else grantee


# Everything of the ledger with an owner other than `$3`. A sequence that belongs to a column (identity,
# serial) follows its table; so do indexes, and a table's row type.
_NOT_THE_OWNERS = """
    SELECT kind, name, pg_get_userbyid(owner) AS owner FROM (
        SELECT 'SCHEMA' AS kind, quote_ident(n.nspname) AS name, n.nspowner AS owner
        FROM pg_namespace n WHERE n.nspname = ANY($1::text[])
        UNION ALL
        SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                              WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
               quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relowner
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE (n.nspname = ANY($1::text[]) OR c.oid = to_regclass($2))
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text, p.proowner
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY($1::text[])
        UNION ALL
        SELECT 'TYPE', format_type(t.oid, NULL), t.typowner
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY($1::text[])
          AND (t.typtype IN ('e', 'd', 'r')
               OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
    ) ledger
    WHERE pg_get_userbyid(owner) <> $3
    ORDER BY kind, name
"""

_DEFAULT_PRIVILEGES = """
    SELECT n.nspname AS schema,
           CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                                WHEN 'T' THEN 'TYPES' END AS objects,
           CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee,
           a.privilege_type AS privilege, a.is_grantable AS grantable
    FROM pg_default_acl d
    JOIN pg_namespace n ON n.oid = d.defaclnamespace
    CROSS JOIN LATERAL aclexplode(d.defaclacl) a
    WHERE n.nspname = ANY($1::text[]) AND pg_get_userbyid(d.defaclrole) = ANY($2::text[])
      AND d.defaclobjtype IN ('r', 'S', 'f', 'T')
      AND a.grantee <> d.defaclrole AND pg_get_userbyid(a.grantee) IS DISTINCT FROM $3
    ORDER BY 1, 2, 3, 4
"""


def _dsn(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


async def _ensure_role(conn: asyncpg.Connection, login: DatabaseLogin, role: str) -> bool:
    """True when the role was created now."""
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        return False
    try:
        await conn.execute(create_role_statement(role, make_url(login.url).password))
    except asyncpg.DuplicateObjectError:
        return False  # created meanwhile by someone who does not take the lock
    return True


async def _ensure_group_role(conn: asyncpg.Connection, role: str) -> bool:
    """True when the role was created now: NOLOGIN, nothing else; members are granted it by hand."""
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        return False
    try:
        await conn.execute(f"CREATE ROLE {quote_ident(role)} NOLOGIN")
    except asyncpg.DuplicateObjectError:
        return False
    return True


async def _ensure_database(conn: asyncpg.Connection, name: str, owner: str, setup: RoleSetup) -> None:
    current = await conn.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name)
    if current is None:
        await conn.execute(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)}")
        setup.database_created = True
    elif current != owner:
        await conn.execute(f"ALTER DATABASE {quote_ident(name)} OWNER TO {quote_ident(owner)}")
        setup.database_previous_owner = current


async def _hand_over_the_ledger(conn: asyncpg.Connection, owner: str, setup: RoleSetup) -> None:
    async with conn.transaction():
        objects = [LedgerObject(**r) for r in await conn.fetch(_NOT_THE_OWNERS, LEDGER_SCHEMAS, SCHEMA_VERSION_TABLE,
                                                               owner)]  # fmt: skip
        previous = sorted({o.owner for o in objects})
        grants = [DefaultPrivilege(**r) for r in await conn.fetch(_DEFAULT_PRIVILEGES, LEDGER_SCHEMAS, previous, owner)]
        for statement in hand_over_statements(objects, owner) + default_privilege_statements(grants, owner):
            await conn.execute(statement)
    setup.handed_over.update(o.owner for o in objects)


async def set_up_roles(admin: DatabaseLogin, owner: DatabaseLogin, service: DatabaseLogin) -> RoleSetup:
    """Create the two roles and the database, and hand the owner the ledger (module docstring)."""
    owner_role, service_role = roles_to_set_up(owner, service)
    database = str(owner.database)
    setup = RoleSetup(owner, service)
    maintenance = await asyncpg.connect(_dsn(admin.url, MAINTENANCE_DATABASE))
    try:
        # The lock `migrate` takes to create a database: set-ups running at once take turns.
        await maintenance.execute("SELECT pg_advisory_lock($1)", CREATE_DATABASE_LOCK_ID)
        for role, login in ((owner_role, owner), (service_role, service)):
            if await _ensure_role(maintenance, login, role):
                setup.created_roles.append(role)
        if await _ensure_group_role(maintenance, ANALYST_ROLE):
            setup.created_roles.append(ANALYST_ROLE)
        await _ensure_database(maintenance, database, owner_role, setup)
        ledger = await asyncpg.connect(_dsn(admin.url, database))
        try:
            await _hand_over_the_ledger(ledger, owner_role, setup)
        finally:
            await ledger.close()
    finally:
        await maintenance.close()  # also releases the advisory lock
    return setup


def privileges_line(privileges: ServicePrivileges, service: DatabaseLogin) -> str:
    """What the service's role may do now, and what is wrong with it if anything."""
    role = f"role {privileges.role} ({service.variable})"
    if not privileges.granted:
        what = "a superuser" if privileges.superuser else "the role that migrates, so it may do what the owner may"
        return (
            f"privileges: the service connects as {privileges.role}, {what}: give it a role of its own "
            f"and set DATABASE_OWNER_URL to the owner's ({ROLES_DOCS})"
        )
    if privileges.superuser:
        return (
            f"privileges: granted to {role}, but it is a superuser, which no grant limits: "
            f"give the service a role of its own ({ROLES_DOCS})"
        )
    return f"privileges: {role} may read and append the log and write the outbox and the projections, nothing more"
