"""`ledger.webhooks` (`tiktok.shop.<type>`): TikTok Shop webhooks relayed byte for byte by the gateway."""

from __future__ import annotations

import hashlib

from events.envelope import WEBHOOK_RECEIVED, NewEvent
from events.webhooks import parse_exact, read_envelope, signature_matches
from handlers.intake import MAX_BODY_BYTES, Delivery, EventBuilder, Unprocessable


def routing_type(routing_key: str) -> int | None:
    suffix = routing_key.rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else None


def webhook_event_builder(app_key: str | None, app_secret: str | None) -> EventBuilder:
    """With an app key and secret configured, an unsigned or tampered webhook is never recorded."""

    def build(delivery: Delivery) -> NewEvent:
        body = delivery.body
        if len(body) > MAX_BODY_BYTES:
            raise Unprocessable("too_large", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
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
        if not isinstance(parsed, dict):
            raise Unprocessable("invalid_schema", f"webhook body must be a JSON object, got {type(parsed).__name__}")
        envelope = read_envelope(parsed, routing_type(delivery.routing_key))
        key = envelope.notification_id or "sha256:" + hashlib.sha256(body).hexdigest()
        return NewEvent(
            stream_id=f"webhook-{key}",
            event_type=WEBHOOK_RECEIVED,
            data={
                "type": envelope.type,
                "notification_id": envelope.notification_id,
                "shop_id": envelope.shop_id,
                "creator_open_id": envelope.creator_open_id,
                "timestamp": envelope.occurred_at.isoformat() if envelope.occurred_at else None,
                "signature_valid": signature_valid,
                # Exactly what is needed to verify again: the body as received and the signature.
                "body": text,
                "authorization": str(presented) if presented else None,
                "payload": parsed,  # every number kept as its exact text
            },
            metadata=delivery.metadata("tiktok_webhook"),
            dedupe_key=f"tiktok.shop/{key}",
        )

    return build
