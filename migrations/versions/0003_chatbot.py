"""Chatbot schedules, tasks, opt-outs and the transactional outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Column = tuple[str, str, str]  # name, SQL type and constraints, comment


def create_table(qualified: str, comment: str, columns: list[Column], *constraints: str) -> None:
    """CREATE TABLE with a COMMENT on the table and on every column (analysts read them)."""
    body = ",\n  ".join([f"{name} {sql}" for name, sql, _ in columns] + list(constraints))
    op.execute(f"CREATE TABLE {qualified} (\n  {body}\n)")
    op.execute(f"COMMENT ON TABLE {qualified} IS {quote(comment)}")
    for name, _, col_comment in columns:
        op.execute(f"COMMENT ON COLUMN {qualified}.{name} IS {quote(col_comment)}")


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


SCHEDULES: list[Column] = [
    ("sample_id", "text NOT NULL", "The sample the messages are about"),
    ("scenario", "text NOT NULL", "shipped, content_pending or no_content"),
    ("state", "text NOT NULL", "pending, dispatched (last run sent, awaiting outcome), done, cancelled, skipped"),
    ("due_at", "timestamptz", "When the next run may go out (quiet hours and the daily cap may defer it)"),
    ("run_count", "integer NOT NULL", "Runs issued so far"),
    ("max_runs", "integer NOT NULL", "Most runs in the sample's life (1 for one-shots, 4 for no_content)"),
    (
        "skip_reason",
        "text",
        "Why skipped (region_not_supported, no_creator_id, creator_opted_out) or cancelled (sample_left_status, "
        "content_observed, creator_opted_out)",
    ),
    ("last_run_at", "timestamptz", "When the last run was issued"),
    ("region", "text NOT NULL", "The sample's region (decides the quiet-hours time zone)"),
    ("platform_creator_id", "text", "The creator the messages go to"),
    ("updated_position", "bigint NOT NULL", "Position of the last event that changed this row"),
]

TASKS: list[Column] = [
    ("task_id", "text PRIMARY KEY", "uuid5 of (sample id, scenario, run number): the same run always has this id"),
    ("sample_id", "text NOT NULL", "The sample"),
    ("scenario", "text NOT NULL", "shipped, content_pending or no_content"),
    ("run_no", "integer NOT NULL", "1 for the first run of the scenario, 2 for the second reminder, ..."),
    ("platform_creator_id", "text NOT NULL", "Who the message goes to"),
    ("region", "text NOT NULL", "Region of the sample"),
    ("messages", "jsonb NOT NULL", "The messages as sent to the workers"),
    ("issued_at", "timestamptz NOT NULL", "When the dispatcher decided to send it"),
    ("published_at", "timestamptz", "When the broker first confirmed it; null while not yet published"),
    ("publications", "integer NOT NULL", "How many times it was published (retries keep the same id)"),
    ("outcome", "text", "What the worker reported: sent, failed or skipped; null while unknown"),
    ("outcome_reason", "text", "The worker's reason, if any"),
    ("outcome_at", "timestamptz", "When the worker reported it"),
    ("retry_at", "timestamptz", "When a retryable failure is published again"),
    ("closed", "boolean NOT NULL", "No further publication will happen"),
]

OPT_OUTS: list[Column] = [
    ("platform_creator_id", "text PRIMARY KEY", "Creator"),
    ("opted_out", "boolean NOT NULL", "Messages to this creator are stopped"),
    ("changed_at", "timestamptz NOT NULL", "The `at` of the message that set it"),
]

OUTBOX: list[Column] = [
    ("task_id", "text NOT NULL", "The task id (also the AMQP message_id)"),
    ("publication", "integer NOT NULL", "1 for the first publication, 2 and 3 for retries after a failure"),
    ("sample_id", "text NOT NULL", "The sample"),
    ("scenario", "text NOT NULL", "The scenario"),
    ("run_no", "integer NOT NULL", "The run number"),
    ("platform_creator_id", "text NOT NULL", "The creator (for the per-creator daily cap)"),
    ("body", "jsonb NOT NULL", "The message body: a JSON array with exactly one task"),
    ("created_at", "timestamptz NOT NULL", "When the dispatcher wrote it"),
    ("attempts", "integer NOT NULL DEFAULT 0", "Publish attempts so far"),
    ("next_attempt_at", "timestamptz NOT NULL", "Not tried again before this (backoff after a failure)"),
    ("last_error", "text", "Why the last attempt failed"),
    ("published_at", "timestamptz", "When the broker confirmed it; null = still to publish"),
]


def upgrade() -> None:
    create_table(
        "projections.chatbot_schedules",
        "One row per (sample, scenario) chatbot schedule",
        SCHEDULES,
        "PRIMARY KEY (sample_id, scenario)",
    )
    op.execute("CREATE INDEX chatbot_schedules_due ON projections.chatbot_schedules (due_at) WHERE state = 'pending'")
    op.execute("CREATE INDEX chatbot_schedules_creator ON projections.chatbot_schedules (platform_creator_id)")
    create_table("projections.chatbot_tasks", "One row per chatbot task handed to the workers", TASKS)
    op.execute(
        "CREATE INDEX chatbot_tasks_retry ON projections.chatbot_tasks (retry_at) "
        "WHERE retry_at IS NOT NULL AND NOT closed"
    )
    create_table(
        "projections.chatbot_opt_outs", "Creators' opt-out state as the chatbot projection applied it", OPT_OUTS
    )
    create_table(
        "eventstore.chatbot_outbox",
        "Transactional outbox: tasks to publish to chatbot.topic, written with their chatbot.task_issued event",
        OUTBOX,
        "PRIMARY KEY (task_id, publication)",
    )
    op.execute(
        "CREATE INDEX chatbot_outbox_unpublished ON eventstore.chatbot_outbox (next_attempt_at) "
        "WHERE published_at IS NULL"
    )
    op.execute("CREATE INDEX chatbot_outbox_creator ON eventstore.chatbot_outbox (platform_creator_id, created_at)")
    op.execute(
        "CREATE UNIQUE INDEX chatbot_outbox_run ON eventstore.chatbot_outbox (sample_id, scenario, run_no, publication)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE eventstore.chatbot_outbox")
    for table in ("chatbot_opt_outs", "chatbot_tasks", "chatbot_schedules"):
        op.execute(f"DROP TABLE projections.{table}")
