"""Events about chatbot tasks: the dispatcher's decisions, the relay's publications and the workers'
reports. Decision events carry ids derived from their business key (`events.recorded.decision_id`)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from events.model import DomainEvent, InboundEvent, IsoDatetime, registered


class Scenario(StrEnum):
    SHIPPED = "shipped"
    CONTENT_PENDING = "content_pending"
    NO_CONTENT = "no_content"


class WorkerOutcome(StrEnum):
    """What a chatbot worker reports of a task."""

    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


@registered
class ChatbotTaskIssued(DomainEvent):
    """The dispatcher decided that run `run_no` of a scenario goes out now; its outbox row is written
    in the same transaction."""

    type_name = "chatbot.task_issued"

    task_id: str
    sample_id: str
    scenario: Scenario
    run_no: int
    platform_creator_id: str
    region: str
    messages: list[dict[str, str]]
    issued_at: IsoDatetime


@registered
class ChatbotDispatchDeferred(DomainEvent):
    """A due run must wait (quiet hours, daily cap) until `until`."""

    type_name = "chatbot.dispatch_deferred"

    sample_id: str
    scenario: Scenario
    run_no: int
    until: IsoDatetime
    due_at: IsoDatetime


@registered
class ChatbotRetryIssued(DomainEvent):
    """A failed, retryable task is published again under the same task id."""

    type_name = "chatbot.task_retry_issued"

    task_id: str
    publication: int
    at: IsoDatetime


@registered
class ChatbotTaskPublished(DomainEvent):
    """RabbitMQ confirmed a publication of a task to a bound queue."""

    type_name = "chatbot.task_published"

    task_id: str
    publication: int
    at: IsoDatetime


@registered
class ChatbotResultReported(InboundEvent):
    """`chatbot.result`: a worker says what became of a task."""

    type_name = "chatbot.result_reported"

    task_id: str = Field(min_length=1)
    outcome: WorkerOutcome
    reason: str | None = None
    retryable: bool = False
    at: IsoDatetime
