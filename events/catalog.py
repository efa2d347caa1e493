"""Rows of `creators.crawled` and `products.crawled`, read leniently one by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.crawl import RejectedRow
from events.keys import first, pick
from events.lenient import clean_text, parse_count

# Fields that identify a person; they are moved out of the event body into its `personal` column.
PERSONAL_FIELDS = ("whatsapp", "email")


def personal_field(key: str) -> str | None:
    """The personal field a key names, however it is spelled: `whatsApp`, `WhatsApp`, `e_mail`, `E-Mail`
    all stay out of the body analysts read. Spelling must never be a way around the split."""
    folded = "".join(ch for ch in key.lower() if ch.isalnum())
    return folded if folded in PERSONAL_FIELDS else None


def split_personal(rows: list[Any]) -> tuple[list[Any], dict[str, Any] | None]:
    """Rows without their personal fields, and those fields by row index (None when there were none)."""
    cleaned: list[Any] = []
    personal: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            cleaned.append(row)
            continue
        kept = {k: v for k, v in row.items() if personal_field(str(k)) is None}
        found: dict[str, Any] = {}
        for key, value in row.items():
            if (field := personal_field(str(key))) is not None and value is not None:
                found.setdefault(field, value)
        if found:
            personal[str(index)] = found
        cleaned.append(kept)
    return cleaned, ({"rows": personal} if personal else None)


@dataclass(frozen=True)
class CreatorRow:
    platform_creator_id: str
    platform_creator_username: str | None
    platform_creator_display_name: str | None
    region: str | None
    followers: int | None
    whatsapp: str | None
    email: str | None


@dataclass(frozen=True)
class ProductRow:
    platform_product_id: str
    product_name: str | None
    platform_campaign_id: str | None
    platform_campaign_name: str | None
    region: str | None


def read_creator_row(index: int, row: Any, personal: dict[str, Any]) -> CreatorRow | RejectedRow:
    if not isinstance(row, dict):
        return RejectedRow(index, f"row is a {type(row).__name__}, not an object")
    creator_id = clean_text(pick(row, "platformCreatorId"))
    if creator_id is None:
        return RejectedRow(index, "missing platformCreatorId")
    region = clean_text(pick(row, "region"))
    return CreatorRow(
        platform_creator_id=creator_id,
        platform_creator_username=clean_text(first(row, "platformCreatorUsername", "creatorUsername")),
        platform_creator_display_name=clean_text(first(row, "platformCreatorDisplayName", "creatorName")),
        region=region.upper() if region else None,
        followers=parse_count(first(row, "followers", "followerCount"), region),
        whatsapp=clean_text(personal.get("whatsapp")),
        email=clean_text(personal.get("email")),
    )


def read_product_row(index: int, row: Any) -> ProductRow | RejectedRow:
    if not isinstance(row, dict):
        return RejectedRow(index, f"row is a {type(row).__name__}, not an object")
    product_id = clean_text(pick(row, "platformProductId"))
    if product_id is None:
        return RejectedRow(index, "missing platformProductId")
    region = clean_text(pick(row, "region"))
    return ProductRow(
        platform_product_id=product_id,
        product_name=clean_text(pick(row, "productName")),
        platform_campaign_id=clean_text(pick(row, "platformCampaignId")),
        platform_campaign_name=clean_text(pick(row, "platformCampaignName")),
        region=region.upper() if region else None,
    )
