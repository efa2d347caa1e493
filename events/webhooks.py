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
    """JSON with every number kept as its exact text: ids above 2^53 (even bare numbers) lose nothing."""
    return json.loads(body, parse_int=str, parse_float=str)


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


def read_envelope(parsed: dict[str, Any], routing_type: int | None) -> WebhookEnvelope:
    """The envelope fields, all optional: TikTok omits some on some topics (type 3 has no id)."""
    stamp = _as_int(parsed.get("timestamp"))
    data = parsed.get("data")
    return WebhookEnvelope(
        type=_as_int(parsed.get("type")) if parsed.get("type") is not None else routing_type,
        notification_id=_text(parsed.get("tts_notification_id")),
        shop_id=_text(parsed.get("shop_id")),
        creator_open_id=_text(parsed.get("creator_open_id")),
        occurred_at=datetime.fromtimestamp(stamp, UTC) if stamp is not None and stamp > 0 else None,
        data=data if isinstance(data, dict) else {},
    )


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
