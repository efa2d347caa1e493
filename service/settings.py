"""Configuration from the environment (names and defaults per docs/contract.md)."""

from __future__ import annotations

import re
from functools import cached_property
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from projections.quiet_hours import QuietHours, parse_quiet_hours

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

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = "postgresql://postgres@localhost:5432/sample_ledger"
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
    projection_batch_size: int = Field(default=500, ge=1)
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

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, value: str) -> str:
        # The messages never repeat the value: it may carry a password.
        expected = "expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        _require_a_url("DATABASE_URL", value, expected)
        scheme = value.split("://", 1)[0]
        if scheme not in POSTGRESQL_SCHEMES:
            raise ValueError(f"DATABASE_URL has {_shown(scheme)}, not PostgreSQL's; {expected}")
        try:
            url = make_url(value)
        except (ArgumentError, ValueError, TypeError):
            raise ValueError(f"DATABASE_URL cannot be read (is the port a number?); {expected}") from None
        if not url.database:
            raise ValueError(f"DATABASE_URL names no database; {expected}")
        return value

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
