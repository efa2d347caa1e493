"""`ledger.webhooks` (`tiktok.shop.<type>`): TikTok Shop webhooks relayed byte for byte by the gateway."""

from __future__ import annotations

import hashlib

from events import streams
from events.recorded import NewEvent
from events.sample_events import WebhookReceived
from events.webhooks import parse_exact, read_envelope, signature_matches, webhook_type
from handlers.delivery import Delivery, EventBuilder, Unprocessable, check_size


def routing_type(routing_key: str) -> int | None:
    suffix = routing_key.rsplit(".", 1)[-1]
    return webhook_type(suffix) if suffix.isascii() and suffix.isdigit() else None


def webhook_event_builder(app_key: str | None, app_secret: str | None) -> EventBuilder:
    """With an app key and secret configured, an unsigned or tampered webhook is never recorded."""

    def build(delivery: Delivery) -> NewEvent:
        body = delivery.body
        check_size(body)
        presented = delivery.headers.get("authorization")
        signature_valid: bool | None = None
        if app_key and app_secret:
            if not signature_matches(app_key, app_secret, body, str(presented) if presented else None):
                detail = "no authorization header" if not presented else "authorization does not match the body"
                raise Unprocessable("invalid_signature", detail)
            signature_valid = True
        try:
            text = body.decode("utf-8")
            parsed = parse_exact(body)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
            raise Unprocessable("invalid_json", f"body is not JSON: {exc}") from None
        except RecursionError:
            raise Unprocessable("invalid_json", "body is not JSON the service can read: nested too deeply") from None
        if not isinstance(parsed, dict):
            raise Unprocessable("invalid_schema", f"webhook body must be a JSON object, got {type(parsed).__name__}")
        envelope = read_envelope(parsed, routing_type(delivery.routing_key))
        key = envelope.notification_id or "sha256:" + hashlib.sha256(body).hexdigest()
        webhook = WebhookReceived(
            type=envelope.type,
            notification_id=envelope.notification_id,
            shop_id=envelope.shop_id,
            creator_open_id=envelope.creator_open_id,
            timestamp=envelope.occurred_at,
            signature_valid=signature_valid,
            body=text,
            authorization=str(presented) if presented else None,
            payload=parsed,
        )
        return NewEvent.of(webhook, stream_id=streams.webhook(key), metadata=delivery.metadata("tiktok_webhook"),
                           dedupe_key=f"tiktok.shop/{key}")  # fmt: skip

    return build
