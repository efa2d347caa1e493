"""Appenders announce themselves, so the read fence waits only for transactions that append events.

Every transaction that appends to `eventstore.events` holds a shared transaction-level advisory lock
(7241, 1) from before its first write. Readers take as their fence the oldest running transaction
that holds it (see `service/eventstore.py`), instead of the oldest running transaction of the whole
server, which a long write in another database, or on another table, used to hold back.

The trigger makes this a guarantee, not a convention: a statement that appends takes the lock itself
when the transaction has not written yet, and is refused when the transaction already wrote something
without it (its transaction id could then be older than a fence a reader already passed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION eventstore.take_appender_lock() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_locks
                           WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted
                             AND classid = 7241 AND objid = 1 AND objsubid = 2) THEN
                IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
                    RAISE EXCEPTION 'eventstore.events: this transaction wrote before taking the appender lock'
                        USING HINT = 'call pg_advisory_xact_lock_shared(7241, 1) before the first write of a '
                                     'transaction that appends events (service.eventstore.begin_appending)';
                END IF;
                PERFORM pg_advisory_xact_lock_shared(7241, 1);
            END IF;
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER events_take_appender_lock BEFORE INSERT ON eventstore.events
        FOR EACH STATEMENT EXECUTE FUNCTION eventstore.take_appender_lock()
    """)
    op.execute(
        "COMMENT ON FUNCTION eventstore.take_appender_lock() IS "
        "'Appending transactions hold advisory lock (7241, 1) from before their first write: the read fence waits "
        "only for them'"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER events_take_appender_lock ON eventstore.events")
    op.execute("DROP FUNCTION eventstore.take_appender_lock()")
