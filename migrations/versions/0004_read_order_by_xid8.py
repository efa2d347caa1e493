"""No schema change: marks the release that reads events in numeric transaction-id order.

Before it, readers ordered transaction ids as text (10014 before 9902). Where the log's transaction
ids span a power of ten, a projection could have stepped over events for good, so this revision
checks the log once and, when it is affected, asks for a rebuild of every projection. Rebuilding is
left to the operator (`sample-ledger projections rebuild --all`): it takes each projection in one
transaction, which a migration should not hold for the length of a replay.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Text order and numeric order agree for ids of the same number of digits, so only a log whose
# lowest and highest ids differ in length can have been misread. min/max come from the index.
_SPAN = text("""
    SELECT min(transaction_id)::text AS lowest_txid, max(transaction_id)::text AS highest_txid
    FROM eventstore.events
""")

REBUILD_ADVICE = "rebuild_advice"


def upgrade() -> None:
    lowest, highest = op.get_bind().execute(_SPAN).one()
    if lowest is not None and len(lowest) != len(highest):
        context.config.attributes[REBUILD_ADVICE] = (
            f"the event log's transaction ids run from {lowest} to {highest}, across a power of ten: "
            "versions before this one could skip events there. "
            "Run `sample-ledger projections rebuild --all` once, with the service running or not."
        )


def downgrade() -> None:
    pass
