"""The database roles' pure decisions: which URL each command uses, the service's privilege policy as
statements, the statements `--create-roles` sends, and how failures name the URL to fix."""

from __future__ import annotations

import asyncpg
import pytest
from pydantic import ValidationError

from service.database import DatabaseLogin
from service.ops.database_roles import (
    DefaultPrivilege,
    LedgerObject,
    create_role_statement,
    default_privilege_statements,
    hand_over_statements,
    privileges_line,
    roles_to_set_up,
)
from service.ops.failures import CommandFailed, reason_for
from service.privileges import ServicePrivileges, grant_statements, quote_ident
from service.settings import Settings

SERVICE = "postgresql://ledger:service-pw@db:5432/ledger"
OWNER = "postgresql://ledger_owner:owner-pw@db:5432/ledger"
ADMIN = "postgresql://postgres:admin-pw@db:5432/ledger"


def settings(**urls: str | None) -> Settings:
    every: dict[str, str | None] = {"database_url": SERVICE, "database_owner_url": None, "database_admin_url": None}
    return Settings(**{**every, **urls})  # type: ignore[arg-type]


def test_each_command_connects_with_the_url_for_its_purpose_falling_back_to_the_service_s() -> None:
    alone = settings()
    assert alone.service_login == DatabaseLogin("DATABASE_URL", SERVICE, "service")
    assert alone.owner_login == DatabaseLogin("DATABASE_URL", SERVICE, "owner")
    assert alone.admin_login == DatabaseLogin("DATABASE_URL", SERVICE, "admin")
    with_owner = settings(database_owner_url=OWNER)
    assert with_owner.owner_login == DatabaseLogin("DATABASE_OWNER_URL", OWNER, "owner")
    assert with_owner.admin_login == DatabaseLogin("DATABASE_OWNER_URL", OWNER, "admin")
    every = settings(database_owner_url=OWNER, database_admin_url=ADMIN)
    assert every.admin_login == DatabaseLogin("DATABASE_ADMIN_URL", ADMIN, "admin")
    assert every.owner_login.role == "ledger_owner"
    assert settings(database_owner_url="", database_admin_url=" ").owner_login.variable == "DATABASE_URL"


@pytest.mark.parametrize(
    ("urls", "said"),
    [
        ({"database_owner_url": "postgresql://o:owner-pw@db/other"},
         "DATABASE_OWNER_URL names the database 'other' and DATABASE_URL 'ledger'; every database URL must name"),
        ({"database_admin_url": "postgresql://postgres:admin-pw@db/postgres"},
         "DATABASE_ADMIN_URL names the database 'postgres' and DATABASE_URL 'ledger'"),
        ({"database_owner_url": OWNER, "database_url": "postgresql://db/ledger"},
         "DATABASE_URL names no user; with DATABASE_OWNER_URL set it must name the service's role"),
        ({"database_owner_url": "mysql://o:owner-pw@db/ledger"}, "DATABASE_OWNER_URL has the scheme 'mysql'"),
        ({"database_admin_url": "postgresql://postgres:admin-pw@db"}, "DATABASE_ADMIN_URL names no database"),
    ],
)  # fmt: skip
def test_urls_that_do_not_fit_together_are_refused_without_their_passwords(urls: dict[str, str], said: str) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(**urls)
    assert said in str(refused.value)
    assert not any(pw in str(refused.value) for pw in ("owner-pw", "admin-pw", "service-pw"))


def test_the_log_is_granted_select_and_insert_only_and_last() -> None:
    statements = grant_statements("ledger")
    on_the_log = [s for s in statements if "eventstore.events" in s]
    assert on_the_log == ['REVOKE ALL ON eventstore.events FROM "ledger"',
                          'GRANT SELECT, INSERT ON eventstore.events TO "ledger"']  # fmt: skip
    # After every schema-wide grant, which would otherwise give the log UPDATE and DELETE.
    assert statements.index(on_the_log[0]) > max(i for i, s in enumerate(statements) if "ALL TABLES IN SCHEMA" in s)
    assert (
        'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA projections TO "ledger"' in statements
    )
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA eventstore TO "ledger"' in statements
    assert 'GRANT SELECT ON public.alembic_version TO "ledger"' in statements
    assert not [s for s in statements if s.startswith("GRANT") and ("CREATE" in s or "OWNER" in s)]


def test_role_names_are_quoted_whatever_they_contain() -> None:
    assert quote_ident('we"ird:name') == '"we""ird:name"'
    assert 'GRANT USAGE ON SCHEMA eventstore TO "we""ird:name"' in grant_statements('we"ird:name')


def test_a_role_is_created_with_a_verifier_never_with_its_password() -> None:
    statement = create_role_statement("ledger", "pa'ss word")
    assert statement.startswith('CREATE ROLE "ledger" LOGIN PASSWORD \'SCRAM-SHA-256$4096:')
    assert "pa'ss" not in statement
    assert create_role_statement("ledger", None) == 'CREATE ROLE "ledger" LOGIN'


def test_create_roles_needs_two_named_roles() -> None:
    owner = DatabaseLogin("DATABASE_OWNER_URL", OWNER, "owner")
    service = DatabaseLogin("DATABASE_URL", SERVICE, "service")
    assert roles_to_set_up(owner, service) == ("ledger_owner", "ledger")
    with pytest.raises(CommandFailed, match="set DATABASE_OWNER_URL to the owner's URL"):
        roles_to_set_up(DatabaseLogin("DATABASE_URL", SERVICE, "owner"), service)
    with pytest.raises(CommandFailed, match="DATABASE_OWNER_URL and DATABASE_URL both name ledger"):
        roles_to_set_up(DatabaseLogin("DATABASE_OWNER_URL", SERVICE, "owner"), service)
    with pytest.raises(CommandFailed, match="needs the role's name in DATABASE_OWNER_URL"):
        roles_to_set_up(DatabaseLogin("DATABASE_OWNER_URL", "postgresql://db/ledger", "owner"), service)


def test_handing_over_alters_each_owner_and_keeps_the_default_privileges() -> None:
    objects = [LedgerObject("SCHEMA", "eventstore", "postgres"),
               LedgerObject("ROUTINE", "eventstore.reject_change()", "postgres")]  # fmt: skip
    assert hand_over_statements(objects, "ledger_owner") == [
        'ALTER SCHEMA eventstore OWNER TO "ledger_owner"',
        'ALTER ROUTINE eventstore.reject_change() OWNER TO "ledger_owner"',
    ]
    grants = [DefaultPrivilege("projections", "TABLES", "ledger_analyst", "SELECT", False),
              DefaultPrivilege("projections", "FUNCTIONS", None, "EXECUTE", True)]  # fmt: skip
    assert default_privilege_statements(grants, "ledger_owner") == [
        'ALTER DEFAULT PRIVILEGES FOR ROLE "ledger_owner" IN SCHEMA "projections" GRANT SELECT ON TABLES TO '
        '"ledger_analyst"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "ledger_owner" IN SCHEMA "projections" GRANT EXECUTE ON FUNCTIONS TO '
        "PUBLIC WITH GRANT OPTION",
    ]


def test_migrate_says_what_the_service_may_do_and_what_is_wrong_with_its_role() -> None:
    service = DatabaseLogin("DATABASE_URL", SERVICE, "service")
    granted = privileges_line(ServicePrivileges("ledger", granted=True, superuser=False), service)
    assert granted.startswith("privileges: role ledger (DATABASE_URL) may read and append the log")
    assert "no grant limits" in privileges_line(ServicePrivileges("postgres", granted=True, superuser=True), service)
    same = privileges_line(ServicePrivileges("ledger", granted=False, superuser=False), service)
    assert "the role that migrates" in same
    assert "set DATABASE_OWNER_URL" in same


@pytest.mark.parametrize(
    ("login", "said"),
    [
        (DatabaseLogin("DATABASE_OWNER_URL", OWNER, "owner"),
         "permission denied for user ledger_owner (DATABASE_OWNER_URL=postgresql://ledger_owner:***@db:5432/ledger): "
         "permission denied for table alembic_version; migrations need the role that owns the database"),
        (DatabaseLogin("DATABASE_ADMIN_URL", ADMIN, "admin"),
         "permission denied for user postgres (DATABASE_ADMIN_URL=postgresql://postgres:***@db:5432/ledger): "
         "permission denied for table alembic_version; `--create-roles` needs a role that may create roles"),
        (DatabaseLogin("DATABASE_URL", SERVICE, "service"),
         "; `sample-ledger migrate` grants the service's role what it needs"),
    ],
)  # fmt: skip
def test_a_refusal_names_the_url_that_was_refused_and_what_its_role_is_for(login: DatabaseLogin, said: str) -> None:
    refusal = asyncpg.InsufficientPrivilegeError("permission denied for table alembic_version")
    reason = reason_for(refusal, settings(database_owner_url=OWNER, database_admin_url=ADMIN), login)
    assert said in reason, reason
    assert "-pw" not in reason
