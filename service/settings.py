"""Configuration from the environment (names and defaults per docs/contract.md)."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from projections.quiet_hours import QuietHours, parse_quiet_hours


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
    record_attempts: int = Field(default=6, ge=1)
    projection_batch_size: int = Field(default=500, ge=1)
    projection_idle_poll_seconds: float = Field(default=0.5, gt=0)
    chatbot_poll_seconds: float = Field(default=1.0, gt=0)
    # A replica can take messages and keep projections without dispatching or relaying chatbot tasks.
    chatbot_dispatch_enabled: bool = True

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
