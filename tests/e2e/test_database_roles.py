"""`sample-ledger migrate` with the ledger's two roles, as operators run it: on a fresh server
(`--create-roles`), and upgrading a deployment that a superuser set up, as every one was before the
roles. Roles get unique names (they belong to the whole server) and are dropped at the end."""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy import make_url

from service.ops.password_verifier import scram_sha_256
from service.settings import Settings
from tests.conftest import _admin, _db_url, drop_roles, login_url
from tests.e2e.test_cli import cli_env, sample_ledger

# Everything of the ledger that has an owner, with it: what `--create-roles` hands over.
LEDGER_OWNERS = """
    SELECT DISTINCT pg_get_userbyid(owner) FROM (
        SELECT nspowner AS owner FROM pg_namespace WHERE nspname IN ('eventstore', 'projections')
        UNION ALL SELECT relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname IN ('eventstore', 'projections') OR c.oid = to_regclass('public.alembic_version')
        UNION ALL SELECT proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname IN ('eventstore', 'projections')
        UNION ALL SELECT datdba FROM pg_database WHERE datname = current_database()) owners
"""


@dataclass(frozen=True)
class Deployment:
    """A database of its own with the URLs an operator would configure for it."""

    admin_url: str
    owner_url: str
    service_url: str
    owner: str
    service: str
    password: str

    def env(self, settings: Settings, **only: str) -> dict[str, str]:
        every = {"DATABASE_ADMIN_URL": self.admin_url, "DATABASE_OWNER_URL": self.owner_url,
                 "DATABASE_URL": self.service_url}  # fmt: skip
        return cli_env(settings, **{**every, **only})


@pytest.fixture
def deployment(server_url: str) -> Iterator[Deployment]:
    suffix = uuid.uuid4().hex[:10]
    database, owner, service = f"sl_roles_{suffix}", f"sl_rowner_{suffix}", f"sl_rservice_{suffix}"
    password = secrets.token_hex(12)
    yield Deployment(
        _db_url(server_url, database),
        login_url(server_url, owner, password, database),
        login_url(server_url, service, password, database),
        owner,
        service,
        password,
    )
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(drop_roles(server_url, [owner, service]))


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def owners(url: str) -> set[str]:
    return {r[0] for r in asyncio.run(fetch(url, LEDGER_OWNERS))}


def test_create_roles_sets_up_a_fresh_server_and_the_service_runs_as_its_role(
    deployment: Deployment, settings: Settings
) -> None:
    env = deployment.env(settings)
    first = sample_ledger("migrate", "--create-roles", env=env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    # The analysts' group role is the server's, shared by every ledger on it: created by the first set-up.
    assert lines.pop(2) in {f"role ledger_analyst (the analysts' read-only group, no login): {done}"
                            for done in ("created", "exists, left as it was")}  # fmt: skip
    assert lines == [
        f"role {deployment.owner} (the owner, DATABASE_OWNER_URL): created",
        f"role {deployment.service} (the service, DATABASE_URL): created",
        f"database {make_url(deployment.owner_url).database}: created, owned by {deployment.owner}",
        f"database {make_url(deployment.owner_url).render_as_string(hide_password=True)}: schema at head",
        f"privileges: role {deployment.service} (DATABASE_URL) may read and append the log and write the outbox "
        "and the projections, nothing more",
    ]
    assert deployment.password not in first.stdout + first.stderr
    assert owners(deployment.admin_url) == {deployment.owner}
    (stored,) = asyncio.run(fetch(deployment.admin_url, "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                                  deployment.service))  # fmt: skip
    assert stored[0].startswith("SCRAM-SHA-256$4096:"), "the server got a verifier, not the password"

    again = sample_ledger("migrate", "--create-roles", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[:2] == [
        f"role {deployment.owner} (the owner, DATABASE_OWNER_URL): exists, left as it was",
        f"role {deployment.service} (the service, DATABASE_URL): exists, left as it was",
    ]
    assert "handed" not in again.stdout
    # Operator commands run as the service's role, rebuild included (TRUNCATE of projection tables).
    rebuilt = sample_ledger("projections", "rebuild", "--all", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr


def test_an_upgrade_from_a_superuser_set_up_is_handed_over_to_the_owner(
    deployment: Deployment, settings: Settings, server_url: str
) -> None:
    as_superuser = deployment.env(settings, DATABASE_URL=deployment.admin_url, DATABASE_OWNER_URL="",
                                  DATABASE_ADMIN_URL="")  # fmt: skip
    before = sample_ledger("migrate", env=as_superuser)  # the set-up before the roles
    assert before.returncode == 0, before.stderr
    assert "privileges: the service connects as postgres, a superuser" in before.stdout
    superuser = make_url(server_url).username
    assert owners(deployment.admin_url) == {superuser}

    # Roles created by hand, the schema left as it was: the owner cannot grant on tables it does not own.
    asyncio.run(_admin(server_url, *(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{deployment.password}'"
                                     for role in (deployment.owner, deployment.service))))  # fmt: skip
    owner_only = deployment.env(settings, DATABASE_ADMIN_URL="")
    refused = sample_ledger("migrate", env=owner_only)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"sample-ledger: permission denied for user {deployment.owner} (DATABASE_OWNER_URL=")
    assert "permission denied for table alembic_version" in line
    assert "`sample-ledger migrate --create-roles` (with DATABASE_ADMIN_URL) sets that up" in line
    assert deployment.password not in line
    # Even where it may read the schema's version, it is refused before granting what it cannot.
    asyncio.run(_admin(server_url, f'GRANT SELECT ON alembic_version TO "{deployment.owner}"',
                       database=str(make_url(deployment.owner_url).database)))  # fmt: skip
    refused = sample_ledger("migrate", env=owner_only)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"sample-ledger: role {deployment.owner} does not own ")
    assert f"of the ledger's tables (owned by {superuser}) (DATABASE_OWNER_URL=" in line
    assert "`sample-ledger migrate --create-roles` and DATABASE_ADMIN_URL" in line
    assert deployment.password not in line

    handed = sample_ledger("migrate", "--create-roles", env=deployment.env(settings))
    assert handed.returncode == 0, handed.stderr
    name = make_url(deployment.owner_url).database
    assert f"database {name}: handed from {superuser} to {deployment.owner}" in handed.stdout
    assert any(line.startswith(f"database {name}: ") and f"objects of the ledger handed from {superuser}" in line
               for line in handed.stdout.splitlines())  # fmt: skip
    assert owners(deployment.admin_url) == {deployment.owner}
    # The analysts' read grant on tables created later moved with the schema (migration 0001 set it for the
    # role that ran it, the superuser).
    defaults = asyncio.run(
        fetch(deployment.admin_url,
              "SELECT n.nspname, d.defaclacl::text FROM pg_default_acl d "
              "JOIN pg_namespace n ON n.oid = d.defaclnamespace "
              "WHERE pg_get_userbyid(d.defaclrole) = $1 AND d.defaclobjtype = 'r' ORDER BY 1",
              deployment.owner)
    )  # fmt: skip
    assert [r[0] for r in defaults] == ["eventstore", "projections"]
    assert all("ledger_analyst=r/" in r[1] and f"{deployment.service}=" in r[1] for r in defaults), defaults

    # The service, as its own role, appends to the log the superuser set up.
    appended = asyncio.run(
        fetch(deployment.service_url,
              "INSERT INTO eventstore.events (event_id, stream_id, stream_version, event_type, event_version, data, "
              "metadata) VALUES (gen_random_uuid(), 's', 1, 't', 1, '{}', '{}') RETURNING current_user")
    )  # fmt: skip
    assert appended[0][0] == deployment.service
    after = sample_ledger("migrate", env=deployment.env(settings, DATABASE_ADMIN_URL=""))
    assert after.returncode == 0, after.stderr


def test_create_roles_needs_two_roles_and_migrate_names_a_missing_service_role(
    deployment: Deployment, settings: Settings
) -> None:
    one_role = sample_ledger("migrate", "--create-roles", env=deployment.env(settings, DATABASE_OWNER_URL=""))
    assert one_role.returncode == 1
    assert one_role.stderr.strip() == (
        "sample-ledger: --create-roles sets up the owner's role and the service's: set DATABASE_OWNER_URL to the "
        "owner's URL (DATABASE_URL is the service's; docs/operations.md, \"Database roles\")"
    )
    same_role = sample_ledger("migrate", "--create-roles",
                              env=deployment.env(settings, DATABASE_OWNER_URL=deployment.service_url))  # fmt: skip
    assert same_role.returncode == 1
    assert f"DATABASE_OWNER_URL and DATABASE_URL both name {deployment.service}" in same_role.stderr

    no_service = sample_ledger("migrate", env=deployment.env(settings, DATABASE_OWNER_URL=deployment.admin_url,
                                                             DATABASE_ADMIN_URL=""))  # fmt: skip
    assert no_service.returncode == 1
    (line,) = no_service.stderr.strip().splitlines()
    assert line.startswith(f"sample-ledger: PostgreSQL has no role {deployment.service} (DATABASE_URL=")
    assert "which the service connects as" in line
    assert deployment.password not in line


@pytest.mark.parametrize("password", ["s3cret", "pässwörd", "no\u00a0break", "Ⅸ roman", "\u0627\u0628"])
def test_the_password_verifier_is_the_one_postgresql_computes(server_url: str, password: str) -> None:
    """The verifier `--create-roles` sends instead of the password matches what the server would store
    for it (same salt and iterations), SASLprep included, so the role can log in with the password."""
    role = f"sl_verifier_{uuid.uuid4().hex[:10]}"
    quoted = password.replace("'", "''")
    try:
        asyncio.run(_admin(server_url, "SET password_encryption = 'scram-sha-256'; "
                                       f"CREATE ROLE \"{role}\" PASSWORD '{quoted}'"))  # fmt: skip
        (row,) = asyncio.run(
            fetch(_db_url(server_url, "postgres"), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
        )
    finally:
        asyncio.run(drop_roles(server_url, [role]))
    stored: str = row[0]
    iterations, salt = stored.split("$")[1].split(":")
    assert scram_sha_256(password, base64.b64decode(salt), int(iterations)) == stored
