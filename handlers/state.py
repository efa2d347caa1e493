"""`ledger.state`: status reports from seller-side monitors, chatbot worker results, operator opt-outs."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from events.envelope import CHATBOT_RESULT_REPORTED, CREATOR_MESSAGING_CHANGED, STATUS_REPORTED, NewEvent
from events.state import ChatbotResult, CreatorMessaging, StatusReport
from handlers.intake import Delivery, EventBuilder, Unprocessable, inbound_event, parse_json_object, schema_detail

M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], delivery: Delivery) -> tuple[dict[str, object], M]:
    body = parse_json_object(delivery)
    try:
        return body, model.model_validate(body)
    except ValidationError as exc:
        raise Unprocessable("invalid_schema", schema_detail(exc)) from None


def status_report_event(delivery: Delivery) -> NewEvent:
    body, report = _validated(StatusReport, delivery)
    return inbound_event(delivery, f"status_report-{delivery.dedupe_key}", STATUS_REPORTED, body, report.source)


def chatbot_result_event(delivery: Delivery) -> NewEvent:
    body, result = _validated(ChatbotResult, delivery)
    return inbound_event(delivery, f"chatbot_task-{result.task_id}", CHATBOT_RESULT_REPORTED, body, "chatbot_worker")


def creator_messaging_event(delivery: Delivery) -> NewEvent:
    body, change = _validated(CreatorMessaging, delivery)
    return inbound_event(delivery, f"creator-{change.platform_creator_id}", CREATOR_MESSAGING_CHANGED, body, "operator")


STATE_BUILDERS: dict[str, EventBuilder] = {
    "sample.status_reported": status_report_event,
    "chatbot.result": chatbot_result_event,
    "creator.messaging": creator_messaging_event,
}
