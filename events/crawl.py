"""Sample crawl batches: the envelope collectors publish and the reading of each row.

The envelope is checked when the message arrives (a bad envelope is a dead letter); rows are read by
`read_row`, a pure function the samples projection applies, so a bad row is rejected on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from events.identity import creator_key, sample_id
from events.keys import first, pick
from events.lenient import clean_text, parse_bool, parse_count, parse_decimal, parse_rate, parse_utc
from events.statuses import Status, UnknownStatus, canonical_status

MAX_ROWS = 5000
DEFAULT_REGION = "MX"


def content_count_seen(expanded: bool, items_seen: int) -> int | None:
    """How many posts a crawl saw for a sample, or None when it cannot say: only a collector that opened
    the "View content" drawer can say a sample has none, and items seen without it still prove content
    exists. The one home of "not expanded is not no content"; an unknown count never replaces a known
    one (`projections/sample_state.py`)."""
    return items_seen if expanded or items_seen else None


def content_was_expanded(options: dict[str, Any] | None) -> bool:
    """Only a collector that opened the "View content" drawer can say a sample has no content."""
    return bool(options) and parse_bool(pick(options or {}, "expandViewContent")) is True


@dataclass(frozen=True)
class ContentItem:
    content_type: str
    title: str | None
    posted_at: str | None
    view_count: int | None
    like_count: int | None
    comment_count: int | None
    order_count: int | None
    order_amount: Decimal | None

    @cached_property  # read several times per row by the fold
    def key(self) -> str:
        raw = f"{self.content_type}|{self.title or ''}|{self.posted_at or ''}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SampleRow:
    """One collector row, read leniently into typed facts."""

    index: int
    sample_id: str
    region: str
    platform_product_id: str
    creator_key: str
    platform_creator_id: str | None
    platform_creator_username: str | None
    platform_creator_display_name: str | None
    product_name: str | None
    product_sku: str | None
    platform_campaign_id: str | None
    platform_campaign_name: str | None
    status: Status | None
    stock: int | None
    available_sample_count: int | None
    post_rate: Decimal | None
    is_showcase: bool | None
    request_time_remaining: str | None
    application_id: str | None
    observed_at: datetime | None
    content: ContentItem | None


@dataclass(frozen=True)
class RejectedRow:
    index: int
    reason: str


_CONTENT_TYPES = {"video": "video", "1": "video", "live": "live", "2": "live"}


def read_content(row: dict[str, Any]) -> ContentItem | None:
    """A posted video or LIVE, or None for the empty row a creator without content gets."""
    raw_type = (clean_text(pick(row, "type")) or "").lower()
    if raw_type == "logistics":  # shipment tracking, never content
        return None
    title = clean_text(pick(row, "promotionName"))
    posted_at = clean_text(pick(row, "promotionTime"))
    content_type = _CONTENT_TYPES.get(raw_type)
    if content_type is None:
        if title is None and posted_at is None:
            return None
        content_type = "video"  # a titled entry without a tab type came from the Video tab
    region = (clean_text(pick(row, "region")) or DEFAULT_REGION).upper()  # the region read_row keys the sample on
    return ContentItem(
        content_type=content_type,
        title=title,
        posted_at=posted_at,
        view_count=parse_count(first(row, "promotionViewCount", "promotionView"), region),
        like_count=parse_count(first(row, "promotionLikeCount", "promotionLike"), region),
        comment_count=parse_count(first(row, "promotionCommentCount", "promotionComment"), region),
        order_count=parse_count(first(row, "promotionOrderCount", "promotionOrder"), region),
        order_amount=parse_decimal(first(row, "promotionOrderTotalAmount", "promotionEarn"), region),
    )


def read_row(index: int, row: Any) -> SampleRow | RejectedRow:
    """Read one row; a row that cannot identify its sample or names an unknown status is rejected."""
    if not isinstance(row, dict):
        return RejectedRow(index, f"row is a {type(row).__name__}, not an object")
    product_id = clean_text(pick(row, "platformProductId"))
    if product_id is None:
        return RejectedRow(index, "missing platformProductId")
    creator_id = clean_text(pick(row, "platformCreatorId"))
    username = clean_text(first(row, "platformCreatorUsername", "creatorUsername"))
    key = creator_key(creator_id, username)
    if key is None:
        return RejectedRow(index, "no creator: the row has neither platformCreatorId nor platformCreatorUsername")
    raw_status = pick(row, "status")
    status: Status | None = None
    if clean_text(raw_status) is not None:
        try:
            status = canonical_status(raw_status)
        except UnknownStatus as exc:
            return RejectedRow(index, str(exc))
    region = (clean_text(pick(row, "region")) or DEFAULT_REGION).upper()
    return SampleRow(
        index=index,
        sample_id=sample_id(region, product_id, key),
        region=region,
        platform_product_id=product_id,
        creator_key=key,
        platform_creator_id=creator_id,
        platform_creator_username=username,
        platform_creator_display_name=clean_text(first(row, "platformCreatorDisplayName", "creatorName")),
        product_name=clean_text(pick(row, "productName")),
        product_sku=clean_text(pick(row, "productSku")),
        platform_campaign_id=clean_text(pick(row, "platformCampaignId")),
        platform_campaign_name=clean_text(pick(row, "platformCampaignName")),
        status=status,
        stock=parse_count(pick(row, "stock"), region),
        available_sample_count=parse_count(pick(row, "availableSampleCount"), region),
        post_rate=parse_rate(pick(row, "postRate"), region),
        is_showcase=parse_bool(pick(row, "isShowcase")),
        request_time_remaining=clean_text(pick(row, "requestTimeRemaining")),
        application_id=clean_text(pick(row, "applicationId")),
        observed_at=parse_utc(pick(row, "extractedTime")),
        content=read_content(row),
    )
