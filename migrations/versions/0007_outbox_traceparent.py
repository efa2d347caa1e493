"""Trace context on the chatbot outbox: the W3C `traceparent` a task continues.

With OpenTelemetry on (`OTEL_EXPORTER_OTLP_ENDPOINT`), the dispatcher writes here the trace of the
sample's latest status change, hence of the message that changed it; the relay's publish span continues
that trace and puts its own `traceparent` on the task's AMQP headers. A retry's row copies it. Null
when telemetry was off, or the status change carried none. A nullable column without a default: adding
it rewrites nothing, and replicas of the previous version go on writing rows without it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE eventstore.chatbot_outbox ADD COLUMN traceparent text")
    op.execute(
        "COMMENT ON COLUMN eventstore.chatbot_outbox.traceparent IS "
        "'W3C traceparent of the trace the task continues (the message behind the sample''s latest status "
        "change); null when telemetry was off'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE eventstore.chatbot_outbox DROP COLUMN traceparent")
