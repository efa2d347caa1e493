"""`ledger.state`: status reports from seller-side monitors, chatbot worker results, operator opt-outs."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from events.envelope import CHATBOT_RESULT_REPORTED, CREATOR_MESSAGING_CHANGED, STATUS_REPORTED, NewEvent
from events.state import ChatbotResult, CreatorMessaging, StatusReport
from handlers.intake import Delivery, EventBuilder, Unprocessable, parse_json_object, schema_detail

M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], delivery: Delivery) -> tuple[dict[str, object], M]:
    body = parse_json_object(delivery)
    try:
        return body, model.model_validate(body)
    except ValidationError as exc:
        raise Unprocessable("invalid_schema", schema_detail(exc)) from None


def status_report_event(delivery: Delivery) -> NewEvent:
    body, report = _validated(StatusReport, delivery)
    return NewEvent(
        stream_id=f"status_report-{delivery.dedupe_key}",
        event_type=STATUS_REPORTED,
        data=body,
        metadata=delivery.metadata(report.source),
        dedupe_key=delivery.dedupe_key,
    )


def chatbot_result_event(delivery: Delivery) -> NewEvent:
    body, result = _validated(ChatbotResult, delivery)
    return NewEvent(
        stream_id=f"chatbot_task-{result.task_id}",
        event_type=CHATBOT_RESULT_REPORTED,
        data=body,
        metadata=delivery.metadata("chatbot_worker"),
        dedupe_key=delivery.dedupe_key,
    )


def creator_messaging_event(delivery: Delivery) -> NewEvent:
    body, change = _validated(CreatorMessaging, delivery)
    return NewEvent(
        stream_id=f"creator-{change.platform_creator_id}",
        event_type=CREATOR_MESSAGING_CHANGED,
        data=body,
        metadata=delivery.metadata("operator"),
        dedupe_key=delivery.dedupe_key,
    )


STATE_BUILDERS: dict[str, EventBuilder] = {
    "sample.status_reported": status_report_event,
    "chatbot.result": chatbot_result_event,
    "creator.messaging": creator_messaging_event,
}
