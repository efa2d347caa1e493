"""A chatbot task's identity and its retries: what id it carries and whether it goes out again.

Task ids are derived from the business key, so a re-sent run carries the same id and workers can
spot a repeat. A retryable failure is published again an hour later under the same id, at most
`MAX_RETRIES` times. Pure: times come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL

from events.chatbot_events import WorkerOutcome
from events.identity import uuid5_text

MAX_RETRIES = 2
RETRY_DELAY = timedelta(hours=1)


def task_id(sample_id: str, scenario: str, run_no: int) -> str:
    """The same run of the same scenario always gets the same id."""
    return uuid5_text(NAMESPACE_URL, f"chatbot-task:{sample_id}:{scenario}:{run_no}")


def next_publication(publications: int) -> int | None:
    """The number of a task's next publication, or None when its retries are used up."""
    following = max(publications, 1) + 1
    return following if following <= 1 + MAX_RETRIES else None


@dataclass(frozen=True)
class TaskAttempts:
    """A published task and what the workers said of it."""

    task_id: str
    publications: int
    outcome: str | None = None
    closed: bool = False
    retry_at: datetime | None = None


def on_worker_result(task: TaskAttempts, *, outcome: str, retryable: bool, at: datetime) -> TaskAttempts:
    """Close the task, or plan one more publication under the same id when a retry still makes sense."""
    try:
        reported = WorkerOutcome(outcome)
    except ValueError:
        known = [o.value for o in WorkerOutcome]
        raise ValueError(f"unknown worker outcome {outcome!r}; expected one of {known}") from None
    if task.closed:
        return task  # a late or repeated report cannot reopen a finished task
    if reported == WorkerOutcome.FAILED and retryable and next_publication(task.publications) is not None:
        return replace(task, outcome=reported.value, closed=False, retry_at=at + RETRY_DELAY)
    return replace(task, outcome=reported.value, closed=True, retry_at=None)
