"""Pure readings of the inputs that observe samples: status reports and type-56 webhooks.
(Crawl batches are read by `crawl_reading`.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from events.identity import creator_key, sample_id
from events.sample_events import StatusReported, WebhookReceived
from events.statuses import UnknownStatus, canonical_status
from events.webhooks import SAMPLE_APPLICATION_STATUS_CHANGE, SampleApplicationChange, read_sample_application_change
from projections.sample_state import Observation, SampleState

WEBHOOK_SOURCE = "webhook"


def as_utc(moment: datetime) -> datetime:
    """Times without a zone are UTC (docs/contract.md)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_status_report(report: StatusReported) -> Observation:
    """A seller-side monitor's report; validated at intake, so it identifies its sample."""
    region = report.region.strip().upper()
    key = creator_key(report.platform_creator_id, report.platform_creator_username)
    assert key is not None  # the model requires an id or a username
    return Observation(
        sample_id=sample_id(region, report.platform_product_id, key),
        region=region,
        platform_product_id=report.platform_product_id,
        creator_key=key,
        observed_at=as_utc(report.observed_at),
        source=report.source,
        facts={
            "platform_creator_id": report.platform_creator_id,
            "platform_creator_username": report.platform_creator_username,
            "application_id": report.application_id,
        },
        status=canonical_status(report.status),
    )


@dataclass(frozen=True)
class WebhookReading:
    """What a recorded webhook says about a sample, if anything."""

    type: int | None
    observed_at: datetime
    change: SampleApplicationChange | None = None
    unknown_status: str | None = None


def read_webhook(webhook: WebhookReceived, received_at: datetime) -> WebhookReading:
    observed_at = webhook.timestamp or received_at
    webhook_type = webhook.type
    if webhook_type != SAMPLE_APPLICATION_STATUS_CHANGE:
        return WebhookReading(webhook_type, observed_at)
    payload = webhook.payload
    try:
        change = read_sample_application_change(payload.get("data") or {})
    except UnknownStatus as exc:
        return WebhookReading(webhook_type, observed_at, unknown_status=str(exc))
    return WebhookReading(webhook_type, observed_at, change=change)


def webhook_observation(state: SampleState, change: SampleApplicationChange, observed_at: datetime) -> Observation:
    """A type-56 change applied to the sample it joined."""
    return Observation(
        sample_id=state.sample_id,
        region=state.region,
        platform_product_id=state.platform_product_id,
        creator_key=state.creator_key,
        observed_at=observed_at,
        source=WEBHOOK_SOURCE,
        facts={"application_id": change.application_id},
        status=change.status,
        cancel_reason=change.cancel_reason,
    )
