"""TikTok Shop webhooks as relayed by the gateway: exact parsing, signature, and the type-56 reading."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.statuses import Status, UnknownStatus, webhook_status

SAMPLE_APPLICATION_STATUS_CHANGE = 56


def parse_exact(body: bytes) -> Any:
    """UTF-8 JSON with every number kept as its exact text: ids above 2^53 (even bare numbers) lose nothing.
    Raises ValueError for what is not JSON, including NaN and Infinity (which Python would otherwise
    accept) and UTF-16/32 (which `json.loads` would detect from the bytes)."""
    return json.loads(body.decode("utf-8-sig"), parse_int=str, parse_float=str, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def expected_signature(app_key: str, app_secret: str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 keyed by the app secret over app key + raw body (no separator)."""
    return hmac.new(app_secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


def signature_matches(app_key: str, app_secret: str, body: bytes, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(expected_signature(app_key, app_secret, body), presented.strip())


@dataclass(frozen=True)
class WebhookEnvelope:
    type: int | None
    notification_id: str | None
    shop_id: str | None
    creator_open_id: str | None
    occurred_at: datetime | None
    data: dict[str, Any]


def _as_int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def webhook_type(value: Any) -> int | None:
    """The numeric type, or unknown when it is not an integer a 32-bit column holds (no TikTok type is)."""
    number = _as_int(value)
    return number if number is not None and -(2**31) <= number < 2**31 else None


def read_envelope(parsed: dict[str, Any], routing_type: int | None) -> WebhookEnvelope:
    """The envelope fields, all optional: TikTok omits some on some topics (type 3 has no id)."""
    data = parsed.get("data")
    return WebhookEnvelope(
        type=webhook_type(parsed.get("type")) if parsed.get("type") is not None else routing_type,
        notification_id=_text(parsed.get("tts_notification_id")),
        shop_id=_text(parsed.get("shop_id")),
        creator_open_id=_text(parsed.get("creator_open_id")),
        occurred_at=_moment(_as_int(parsed.get("timestamp"))),
        data=data if isinstance(data, dict) else {},
    )


def _moment(stamp: int | None) -> datetime | None:
    """A webhook's Unix timestamp as a time; unknown when absent or beyond what a datetime holds (it is
    optional: an unusable one must not cost the webhook)."""
    if stamp is None or stamp <= 0:
        return None
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


def _one(value: Any) -> dict[str, Any]:
    """`creator`/`product` come as an object or a one-element list."""
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class SampleApplicationChange:
    application_id: str | None
    platform_product_id: str | None
    platform_creator_id: str | None
    status: Status
    cancel_reason: str | None
    raw_status: str


def read_sample_application_change(data: dict[str, Any]) -> SampleApplicationChange:
    """Type 56 `data`; raises UnknownStatus for a status no vocabulary knows."""
    raw_status = _text(data.get("new_status"))
    if raw_status is None:
        raise UnknownStatus("type 56 webhook without new_status")
    status, cancel_reason = webhook_status(raw_status)
    return SampleApplicationChange(
        application_id=_text(data.get("application_id")),
        platform_product_id=_text(_one(data.get("product")).get("id")),
        platform_creator_id=_text(_one(data.get("creator")).get("creator_open_id")),
        status=status,
        cancel_reason=cancel_reason,
        raw_status=raw_status,
    )
