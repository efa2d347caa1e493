"""`ledger.state` builders: status reports from seller-side monitors, chatbot worker results, and
operators' opt-outs."""

from __future__ import annotations

from events import streams
from events.catalog_events import CreatorMessagingChanged
from events.chatbot_events import ChatbotResultReported
from events.identity import creator_key
from events.recorded import NewEvent
from events.sample_events import StatusReported
from handlers.delivery import Delivery, Unprocessable, inbound_event, parse_json_object, validated


def status_report_event(delivery: Delivery) -> NewEvent:
    report = validated(StatusReported, parse_json_object(delivery))
    # The model takes any non-empty text; a blank id or a username that is only "@" identifies no one,
    # and the samples projection could not key the report to a sample.
    creator_id = (report.platform_creator_id or "").strip() or None
    if creator_key(creator_id, report.platform_creator_username) is None:
        raise Unprocessable("invalid_schema", "needs platformCreatorId or platformCreatorUsername to identify a sample")
    stream = streams.inbound_message("status_report", delivery.dedupe_key)
    return inbound_event(delivery, stream, report, report.source)


def chatbot_result_event(delivery: Delivery) -> NewEvent:
    result = validated(ChatbotResultReported, parse_json_object(delivery))
    return inbound_event(delivery, streams.chatbot_task(result.task_id), result, "chatbot_worker")


def creator_messaging_event(delivery: Delivery) -> NewEvent:
    change = validated(CreatorMessagingChanged, parse_json_object(delivery))
    return inbound_event(delivery, streams.creator(change.platform_creator_id), change, "operator")
