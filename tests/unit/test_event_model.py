"""Typed events: how they are stored, read back, and upgraded from older versions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from events.chatbot_events import ChatbotDispatchDeferred, ChatbotResultReported, Scenario
from events.model import EVENT_CLASSES, UnknownEventType
from events.recorded import NewEvent, RecordedEvent
from events.registry import event_from_data
from events.sample_events import SampleStatusChanged, StatusReported
from events.statuses import Status
from events.upcast import UPCASTERS, upcast

AT = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


def test_every_event_type_has_one_class_under_its_stable_name() -> None:
    assert sorted(EVENT_CLASSES) == [
        "chatbot.dispatch_deferred",
        "chatbot.result_reported",
        "chatbot.task_issued",
        "chatbot.task_published",
        "chatbot.task_retry_issued",
        "creator.crawl_batch_recorded",
        "creator.messaging_changed",
        "product.crawl_batch_recorded",
        "sample.content_observed",
        "sample.crawl_batch_recorded",
        "sample.history_revised",
        "sample.status_changed",
        "sample.status_reported",
        "webhook.received",
    ]


def test_derived_events_are_stored_in_the_shape_the_log_has_always_had() -> None:
    changed = SampleStatusChanged(
        sample_id="s1", region="MX", platform_product_id="p1", platform_creator_id=None, from_status=None,
        to_status=Status.SHIPPED, observed_at=AT, source="collector", regression=False, first_sighting=True,
        content_count=None,
    )  # fmt: skip
    record = NewEvent.of(changed, stream_id="sample-s1", metadata={})
    assert record.event_type == "sample.status_changed"
    assert record.version == 1
    assert record.data["observed_at"] == "2026-05-04T15:00:00+00:00"  # isoformat, not pydantic's "Z" form
    assert record.data["to_status"] == "shipped"
    assert event_from_data(record.event_type, record.data) == changed


def test_an_inbound_event_stores_the_body_exactly_as_received() -> None:
    body = {"taskId": "t1", "outcome": "sent", "at": "2026-05-04T15:00:00Z", "workerVersion": "3.2"}
    result = ChatbotResultReported.from_data(body)
    assert result.task_id == "t1"
    assert result.at == AT
    assert NewEvent.of(result, stream_id="chatbot_task-t1", metadata={}).data is body  # unknown keys kept


def test_a_bad_field_is_named_when_an_event_is_read() -> None:
    with pytest.raises(ValidationError, match="outcome"):
        ChatbotResultReported.from_data({"taskId": "t1", "outcome": "lost", "at": "2026-05-04T15:00:00Z"})
    with pytest.raises(ValidationError, match="platformCreatorId or platformCreatorUsername"):
        StatusReported.from_data({"region": "MX", "platformProductId": "p", "status": "Shipped",
                                  "observedAt": "2026-05-04T15:00:00Z", "source": "monitor"})  # fmt: skip


def test_an_unknown_event_type_is_refused_by_name() -> None:
    with pytest.raises(UnknownEventType, match=r"sample\.teleported"):
        event_from_data("sample.teleported", {})


@pytest.fixture
def version_0_deferral() -> Iterator[None]:
    """An imagined version 0 of `chatbot.dispatch_deferred` that called `until` `not_before`."""

    def rename(data: dict[str, object]) -> dict[str, object]:
        return {**{k: v for k, v in data.items() if k != "not_before"}, "until": data["not_before"]}

    UPCASTERS[("chatbot.dispatch_deferred", 0)] = rename
    yield
    del UPCASTERS[("chatbot.dispatch_deferred", 0)]


@pytest.mark.usefixtures("version_0_deferral")
def test_an_old_version_is_upcast_before_it_becomes_the_current_model() -> None:
    old = {"sample_id": "s1", "scenario": "shipped", "run_no": 1, "not_before": "2026-05-04T15:00:00+00:00",
           "due_at": "2026-05-04T14:00:00+00:00"}  # fmt: skip
    recorded = RecordedEvent(
        position=1, transaction_id=1, event_id=uuid.uuid4(), stream_id="chatbot_schedule-s1-shipped",
        stream_version=1, event_type="chatbot.dispatch_deferred", event_version=0,
        data=upcast("chatbot.dispatch_deferred", 0, old), metadata={}, recorded_at=AT,
    )  # fmt: skip
    deferred = recorded.event
    assert isinstance(deferred, ChatbotDispatchDeferred)
    assert deferred.until == AT
    assert deferred.scenario is Scenario.SHIPPED
