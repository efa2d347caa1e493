"""Quarantine: events a projection could not fold, set aside so the projection goes on.

A projection folds its page of events in one transaction. When the page fails for a reason that is
not an outage, the runner folds the page again one event at a time; an event that fails where its
neighbours pass is the event's fault, and it is recorded here and skipped. When every event fails, it
is the projection's fault (or the database's), and the runner keeps retrying instead, as before.
`projections rebuild` clears a projection's rows here and folds its quarantined events again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = [
    ("projection", "text NOT NULL", "The projection that could not fold the event: samples, catalog or chatbot"),
    ("event_position", "bigint NOT NULL", "eventstore.events.position of the skipped event"),
    ("event_id", "uuid NOT NULL", "eventstore.events.event_id of the skipped event"),
    ("event_type", "text NOT NULL", "Its type, e.g. sample.crawl_batch_recorded"),
    ("stream_id", "text NOT NULL", "Its stream"),
    ("error", "text NOT NULL", "Why the fold failed: the exception's type and message (no event data)"),
    ("quarantined_at", "timestamptz NOT NULL DEFAULT now()", "When the runner set it aside (UTC)"),
]


def upgrade() -> None:
    body = ",\n  ".join([f"{name} {sql}" for name, sql, _ in COLUMNS] + ["PRIMARY KEY (projection, event_position)"])
    op.execute(f"CREATE TABLE projections.quarantined_events (\n  {body}\n)")
    op.execute(
        "COMMENT ON TABLE projections.quarantined_events IS "
        "'Events a projection could not fold and skipped; projections rebuild folds them again'"
    )
    for name, _, comment in COLUMNS:
        quoted = comment.replace("'", "''")
        op.execute(f"COMMENT ON COLUMN projections.quarantined_events.{name} IS '{quoted}'")


def downgrade() -> None:
    op.execute("DROP TABLE projections.quarantined_events")
