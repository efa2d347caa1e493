"""Stream ids: the one place that names them. A stream is the history of one thing: a sample, a
creator, a chatbot task, or an inbound message that concerns no single thing yet (a crawl batch)."""

from __future__ import annotations

# Prefixes, for SQL that finds a thing's streams (`explain`); build ids with the functions below.
SAMPLE = "sample-"
CREATOR = "creator-"
CHATBOT_TASK = "chatbot_task-"
CHATBOT_PUBLICATION = "chatbot_publication-"
CHATBOT_RETRY = "chatbot_retry-"
CHATBOT_SCHEDULE = "chatbot_schedule-"


def sample(sample_id: str) -> str:
    """Derived status and content changes of one sample."""
    return f"{SAMPLE}{sample_id}"


def creator(platform_creator_id: str) -> str:
    """Messaging opt-outs and opt-ins of one creator."""
    return f"{CREATOR}{platform_creator_id}"


def chatbot_task(task_id: str) -> str:
    """The dispatcher's decision to issue a task, and the workers' reports on it."""
    return f"{CHATBOT_TASK}{task_id}"


def chatbot_publication(task_id: str) -> str:
    return f"{CHATBOT_PUBLICATION}{task_id}"


def chatbot_retry(task_id: str) -> str:
    return f"{CHATBOT_RETRY}{task_id}"


def chatbot_schedule(sample_id: str, scenario: str) -> str:
    """Deferrals of one scenario of one sample."""
    return f"{CHATBOT_SCHEDULE}{sample_id}-{scenario}"


def inbound_message(kind: str, dedupe_key: str) -> str:
    """A recorded message that is about no single thing yet: a crawl batch, a status report."""
    return f"{kind}-{dedupe_key}"


def webhook(key: str) -> str:
    """A webhook, by TikTok's notification id (or the hash of its body when it has none)."""
    return f"webhook-{key}"
