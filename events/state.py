"""`ledger.state` messages: seller-side status reports, chatbot worker results, operator opt-outs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from events.statuses import canonical_status


class _Inbound(BaseModel):
    # camelCase or snake_case; unknown keys are kept in the recorded body, never rejected.
    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)


class StatusReport(_Inbound):
    region: str = Field(min_length=1)
    platform_product_id: str = Field(min_length=1)
    platform_creator_id: str | None = None
    platform_creator_username: str | None = None
    status: str | int
    observed_at: datetime
    source: str = Field(min_length=1)
    application_id: str | None = None

    @field_validator("platform_product_id", "platform_creator_id", "application_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | int) -> str | int:
        canonical_status(value)  # raises UnknownStatus (a ValueError) with the value in its message
        return value

    @model_validator(mode="after")
    def _identifies_a_creator(self) -> StatusReport:
        if not (self.platform_creator_id or self.platform_creator_username):
            raise ValueError("needs platformCreatorId or platformCreatorUsername to identify the sample")
        return self


class ChatbotResult(_Inbound):
    task_id: str = Field(min_length=1)
    outcome: Literal["sent", "failed", "skipped"]
    reason: str | None = None
    retryable: bool = False
    at: datetime


class CreatorMessaging(_Inbound):
    platform_creator_id: str = Field(min_length=1)
    opted_out: bool
    reason: str | None = None
    at: datetime

    @field_validator("platform_creator_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class CatalogBatchEnvelope(_Inbound):
    """`creators.crawled` / `products.crawled`: rows are read one by one by the catalog projection."""

    source: str = Field(min_length=1)
    operator_id: str | None = None
    rows: list[Any] = Field(min_length=1)
