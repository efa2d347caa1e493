"""Events about samples: what collectors, seller-side monitors and TikTok said (inbound), and what
the samples projection concluded from it (derived)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.model import DomainEvent, InboundEvent, IsoDatetime, id_as_text, registered
from events.statuses import Status, canonical_status


@registered
class CrawlBatchRecorded(InboundEvent):
    """`samples.crawled`: a page of the affiliate center. Rows are read one by one by the projection,
    so a bad row is rejected alone; only the envelope must hold for the batch to be recorded."""

    type_name = "sample.crawl_batch_recorded"

    source: str = Field(min_length=1)
    operator_id: str | None = None
    options: dict[str, Any] | None = None
    rows: list[Any] = Field(min_length=1)

    @field_validator("source")
    @classmethod
    def _source_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("source must not be blank")
        return value


@registered
class StatusReported(InboundEvent):
    """`sample.status_reported`: a seller-side monitor saw a sample in a status."""

    type_name = "sample.status_reported"

    region: str = Field(min_length=1)
    platform_product_id: str = Field(min_length=1)
    platform_creator_id: str | None = None
    platform_creator_username: str | None = None
    status: str | int
    observed_at: IsoDatetime
    source: str = Field(min_length=1)
    application_id: str | None = None

    @field_validator("platform_product_id", "platform_creator_id", "application_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return id_as_text(value)

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | int) -> str | int:
        canonical_status(value)  # raises UnknownStatus (a ValueError) with the value in its message
        return value

    @model_validator(mode="after")
    def _identifies_a_creator(self) -> StatusReported:
        if not (self.platform_creator_id or self.platform_creator_username):
            raise ValueError("needs platformCreatorId or platformCreatorUsername to identify the sample")
        return self


@registered
class WebhookReceived(DomainEvent):
    """`tiktok.shop.<type>`: a TikTok Shop webhook, kept exactly as needed to verify it again."""

    type_name = "webhook.received"

    type: int | None
    notification_id: str | None
    shop_id: str | None
    creator_open_id: str | None
    timestamp: IsoDatetime | None
    signature_valid: bool | None
    body: str  # the body as received
    authorization: str | None  # the signature presented with it
    payload: dict[str, Any]  # the parsed body, every number kept as its exact text


@registered
class SampleStatusChanged(DomainEvent):
    """Derived: a sample entered a status (its first sighting included).

    `content_changed`: the same observation also changed the sample's content count (now
    `content_count`), so no `sample.content_observed` is derived for it: one event where there were
    two. Absent (false) in events derived before it existed, which have that second event instead."""

    type_name = "sample.status_changed"

    sample_id: str
    region: str
    platform_product_id: str
    platform_creator_id: str | None
    from_status: Status | None
    to_status: Status
    observed_at: IsoDatetime
    source: str
    regression: bool
    first_sighting: bool
    content_count: int | None
    content_changed: bool = False


@registered
class SampleContentObserved(DomainEvent):
    """Derived: the number of posts seen for a sample changed (None: content not looked at)."""

    type_name = "sample.content_observed"

    sample_id: str
    region: str
    platform_creator_id: str | None
    status: Status | None
    content_count: int | None
    observed_at: IsoDatetime


class RevisedStep(BaseModel):
    """One moment of a revised history: a status change (`to_status` set), a content change
    (`content_changed`), or both, with the sample's status and content count right after it."""

    model_config = ConfigDict(frozen=True)

    observed_at: IsoDatetime
    status: Status | None
    content_count: int | None
    content_changed: bool = False
    from_status: Status | None = None
    to_status: Status | None = None
    source: str | None = None
    regression: bool = False
    first_sighting: bool = False


@registered
class SampleHistoryRevised(DomainEvent):
    """Derived: an observation arrived after newer ones, and the sample's status and content were folded
    again in `observed_at` order. `steps` is the sample's whole history in time order; it supersedes the
    `sample.status_changed` and `sample.content_observed` events derived for the sample before it."""

    type_name = "sample.history_revised"

    sample_id: str
    region: str
    platform_product_id: str
    platform_creator_id: str | None
    steps: tuple[RevisedStep, ...]
