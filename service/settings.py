"""Configuration from the environment (names and defaults per docs/contract.md)."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cached_property
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from projections.quiet_hours import QuietHours, parse_quiet_hours
from service.database import DatabaseLogin
from service.eventstore import PageSize

POSTGRESQL_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def _require_a_url(variable: str, value: str, expected: str) -> None:
    if not value.strip():
        raise ValueError(f"{variable} is empty; {expected}")
    if "://" not in value:
        raise ValueError(f"{variable} is not a URL; {expected}")


def _shown(scheme: str) -> str:
    """A URL scheme as an error may quote it: only when it looks like one (it could be anything)."""
    return f"the scheme {scheme!r}" if re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]{0,19}", scheme) else "no readable scheme"


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    # hide_input_in_errors: a validation error's text would otherwise quote the values, passwords included.
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True, hide_input_in_errors=True)

    # The service's role: reads and appends the log, writes the outbox and the projections.
    database_url: str = Field(default="postgresql://postgres@localhost:5432/sample_ledger", repr=False)
    # The owner's role, which `migrate` connects as; unset (or empty): DATABASE_URL's role migrates.
    database_owner_url: str | None = Field(default=None, repr=False)
    # A role that may create roles and databases, for `migrate --create-roles` only; unset: the owner's.
    database_admin_url: str | None = Field(default=None, repr=False)
    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    tiktok_app_key: str | None = None
    tiktok_app_secret: str | None = Field(default=None, repr=False)
    chatbot_regions: str = "MX"
    sample_link_template: str = "https://creator.infound.ai/samples/{sample_id}"
    chatbot_quiet_hours: str = "21:00-09:00"
    chatbot_daily_cap: int = Field(default=3, ge=1)
    log_format: str = "json"
    log_level: str = "INFO"

    # Not part of the contract: tuning knobs with production defaults.
    # A name prefix for every exchange and queue, so test runs can share a broker without
    # touching the real topology. Empty in production.
    amqp_prefix: str = ""
    ingest_prefetch: int = Field(default=64, ge=1)
    projection_batch_size: int = Field(default=PageSize.events, ge=1)
    # A page also ends once its events hold this much stored (compressed) data: a crawl batch can be
    # thousands of rows, and 500 of them in one transaction would be gigabytes of memory and minutes of
    # folding. Smaller budgets cost throughput (more pages, each with its fixed statements).
    projection_page_bytes: int = Field(default=PageSize.stored_bytes, ge=1)
    projection_idle_poll_seconds: float = Field(default=0.5, gt=0)
    chatbot_poll_seconds: float = Field(default=1.0, gt=0)
    # How long `run` keeps trying to reach RabbitMQ at start-up (refused connection, unknown host)
    # before it gives up; a refused login fails at once.
    broker_startup_seconds: float = Field(default=30.0, gt=0)
    # While an inbound queue is idle, a probe goes to it this often; a consumer silent through three
    # probes is taken for lost and the service exits 3 (service/consumer_watch.py).
    consumer_probe_seconds: float = Field(default=3.0, gt=0)
    # A replica can take messages and keep projections without dispatching or relaying chatbot tasks.
    chatbot_dispatch_enabled: bool = True

    @property
    def page_size(self) -> PageSize:
        """How much a projection applies in one transaction (the runner and `projections rebuild`)."""
        return PageSize(self.projection_batch_size, self.projection_page_bytes)

    @field_validator("database_owner_url", "database_admin_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Orchestrators blank a variable to unset it; an empty DATABASE_URL stays an error.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url", "database_owner_url", "database_admin_url")
    @classmethod
    def _postgresql_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        # The messages never repeat the value: it may carry a password.
        variable = str(info.field_name).upper()
        expected = "expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        _require_a_url(variable, value, expected)
        scheme = value.split("://", 1)[0]
        if scheme not in POSTGRESQL_SCHEMES:
            raise ValueError(f"{variable} has {_shown(scheme)}, not PostgreSQL's; {expected}")
        try:
            url = make_url(value)
        except (ArgumentError, ValueError, TypeError):
            raise ValueError(f"{variable} cannot be read (is the port a number?); {expected}") from None
        if not url.database:
            raise ValueError(f"{variable} names no database; {expected}")
        return value

    @model_validator(mode="after")
    def _one_ledger_database(self) -> Settings:
        """The owner migrates the database the service uses, and the admin sets up that one: a URL that
        named another would migrate or hand over the wrong database."""
        service = self.service_login
        for other in (self.owner_login, self.admin_login):
            if other.database != service.database:
                raise ValueError(
                    f"{other.variable} names the database {other.database!r} and DATABASE_URL {service.database!r}; "
                    "every database URL must name the ledger's database (only the user, password, host and port "
                    "may differ)"
                )
        if self.database_owner_url is not None and service.role is None:
            raise ValueError(
                "DATABASE_URL names no user; with DATABASE_OWNER_URL set it must name the service's role, "
                "which `migrate` grants privileges to"
            )
        return self

    @property
    def service_login(self) -> DatabaseLogin:
        """What the service and the operator commands connect as."""
        return DatabaseLogin("DATABASE_URL", self.database_url, "service")

    @property
    def owner_login(self) -> DatabaseLogin:
        """What `migrate` connects as: the owner's URL, else the service's (one role does both)."""
        if self.database_owner_url is None:
            return DatabaseLogin("DATABASE_URL", self.database_url, "owner")
        return DatabaseLogin("DATABASE_OWNER_URL", self.database_owner_url, "owner")

    @property
    def admin_login(self) -> DatabaseLogin:
        """What `migrate --create-roles` connects as to create the roles: the admin's URL, else the owner's."""
        if self.database_admin_url is None:
            return replace(self.owner_login, purpose="admin")
        return DatabaseLogin("DATABASE_ADMIN_URL", self.database_admin_url, "admin")

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        expected = "expected amqp://USER:PASSWORD@HOST[:PORT]/[VHOST] (or amqps://)"
        _require_a_url("AMQP_URL", value, expected)
        parts = urlsplit(value)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError(f"AMQP_URL has {_shown(parts.scheme)}; {expected}")
        try:
            parts.port  # noqa: B018 (reading it checks it)
        except ValueError:
            raise ValueError(f"AMQP_URL has a port that is not a number; {expected}") from None
        if not parts.hostname:
            raise ValueError(f"AMQP_URL names no host; {expected}")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in ("json", "console"):
            raise ValueError("LOG_FORMAT must be 'json' or 'console'")
        return value

    @field_validator("sample_link_template")
    @classmethod
    def _usable_link_template(cls, value: str) -> str:
        # Checked at start-up: a template that fails here would fail every content_pending dispatch.
        try:
            value.format(sample_id="00000000-0000-0000-0000-000000000000")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"SAMPLE_LINK_TEMPLATE may only use {{sample_id}}, got {value!r}") from exc
        return value

    @field_validator("chatbot_quiet_hours")
    @classmethod
    def _readable_quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)
        return value

    @cached_property
    def regions(self) -> frozenset[str]:
        return frozenset(r.strip().upper() for r in self.chatbot_regions.split(",") if r.strip())

    @cached_property
    def quiet_hours(self) -> QuietHours | None:
        return parse_quiet_hours(self.chatbot_quiet_hours)
