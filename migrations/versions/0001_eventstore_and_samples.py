"""Event store, ingestion projections, checkpoints and the analyst role.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
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


EVENTS: list[Column] = [
    (
        "position",
        "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "Global order of recording; increasing, may have holes from rolled-back transactions",
    ),
    ("event_id", "uuid NOT NULL UNIQUE", "Identity of the event; derived events get a deterministic one"),
    ("stream_id", "text NOT NULL", "The stream (entity or inbound message) the event belongs to"),
    ("stream_version", "integer NOT NULL", "1-based position of the event within its stream"),
    ("event_type", "text NOT NULL", "Stable dotted name, e.g. sample.crawl_batch_recorded"),
    ("event_version", "integer NOT NULL", "Schema version of data for this event type"),
    ("data", "jsonb NOT NULL", "The event body"),
    (
        "metadata",
        "jsonb NOT NULL",
        "message_id, correlation_id, causation_id, source, received_at, exchange and routing key",
    ),
    (
        "dedupe_key",
        "text",
        "Inbound idempotency key (routing key + AMQP message id, or a body hash); null for derived events",
    ),
    (
        "transaction_id",
        "xid8 NOT NULL DEFAULT pg_current_xact_id()",
        "Writing transaction; readers only take rows below the oldest running transaction (gap-free reads)",
    ),
    ("recorded_at", "timestamptz NOT NULL DEFAULT now()", "When the event was committed to the log (UTC)"),
]

SAMPLES: list[Column] = [
    (
        "sample_id",
        "text PRIMARY KEY",
        "uuid5(NAMESPACE_URL, 'sample:' || region || ':' || product id || ':' || creator key)",
    ),
    ("region", "text NOT NULL", "Upper-case region code, e.g. MX"),
    ("platform_product_id", "text NOT NULL", "TikTok Shop product id"),
    ("creator_key", "text NOT NULL", "Platform creator id, else the username lower-cased without @"),
    ("platform_creator_id", "text", "TikTok creator id; chatbot messages need it"),
    ("platform_creator_username", "text", "Creator @handle as last seen"),
    ("platform_creator_display_name", "text", "Creator display name as last seen"),
    ("product_name", "text", "Product name as last seen"),
    ("product_sku", "text", "SKU text as last seen"),
    ("platform_campaign_id", "text", "Campaign id as last seen (an attribute, not part of the identity)"),
    ("platform_campaign_name", "text", "Campaign name as last seen"),
    ("status", "text", "Canonical status: to_review, ready_to_ship, shipped, content_pending, completed, canceled"),
    ("status_changed_at", "timestamptz", "observed_at of the observation that set the current status"),
    ("status_observed_at", "timestamptz", "Newest observation applied; older ones are stale"),
    ("status_source", "text", "Source of the observation that set the current status"),
    ("cancel_reason", "text", "Raw cancel status when the sample was canceled by a webhook"),
    ("first_seen_at", "timestamptz NOT NULL", "Earliest observation of the sample"),
    ("last_seen_at", "timestamptz NOT NULL", "Latest observation of the sample"),
    ("stock", "integer", "Product stock as last seen"),
    ("available_sample_count", "integer", "Remaining sample quota as last seen"),
    ("post_rate", "numeric", "Creator post rate as a fraction (54 % is 0.54)"),
    ("is_showcase", "boolean", "Product is in the creator's showcase"),
    ("request_time_remaining", "text", "Time left on the request as shown, e.g. '5 days'"),
    (
        "content_count",
        "integer",
        "Videos/LIVEs seen in the latest look at the content drawer; null = never looked at, 0 = none",
    ),
    ("content_observed_at", "timestamptz", "observed_at of the look that set content_count"),
    ("application_id", "text", "TikTok sample application id, when a collector or webhook supplied it"),
    ("fingerprint", "text NOT NULL", "Hash of the projected facts; equal fingerprints mean nothing changed"),
    ("last_event_position", "bigint NOT NULL", "Position of the last event that changed this row"),
]

CONTENTS: list[Column] = [
    ("sample_id", "text NOT NULL", "The sample the content promotes (its creator's sample)"),
    ("content_key", "text NOT NULL", "Hash of content_type, title and posted_at: the content's identity"),
    ("content_type", "text NOT NULL", "video or live"),
    ("title", "text", "Video or LIVE title as shown"),
    ("posted_at", "text", "Posting time exactly as shown by TikTok"),
    ("view_count", "bigint", "Views as last seen"),
    ("like_count", "bigint", "Likes as last seen"),
    ("comment_count", "bigint", "Comments as last seen"),
    ("order_count", "bigint", "Orders as last seen"),
    ("order_amount", "numeric", "Order revenue as last seen"),
    ("first_seen_at", "timestamptz NOT NULL", "Earliest observation of this content"),
    ("last_seen_at", "timestamptz NOT NULL", "Latest observation of this content"),
]

HISTORY: list[Column] = [
    ("event_position", "bigint NOT NULL", "Position of the event carrying the observation"),
    ("sample_id", "text NOT NULL", "The sample"),
    ("seq", "integer NOT NULL", "Order of the change within its event"),
    ("from_status", "text", "Status before; null on first sighting"),
    ("to_status", "text NOT NULL", "Status after"),
    ("observed_at", "timestamptz NOT NULL", "When the source observed the new status"),
    ("source", "text NOT NULL", "Who observed it: the collector name, webhook or a monitor"),
    ("regression", "boolean NOT NULL", "The move goes backwards in the lifecycle (never triggers a message)"),
]

BATCHES: list[Column] = [
    ("message_id", "text PRIMARY KEY", "AMQP message id of the batch, or a hash of routing key and body"),
    ("event_position", "bigint NOT NULL", "Position of the recorded batch in eventstore.events"),
    ("source", "text NOT NULL", "Collector name from the batch"),
    ("received_at", "timestamptz NOT NULL", "When the service received the message"),
    ("content_expanded", "boolean NOT NULL", "The collector looked at content (options.expandViewContent)"),
    ("rows_total", "integer NOT NULL", "Rows in the batch"),
    ("rows_rejected", "integer NOT NULL", "Rows that could not be applied"),
    ("rejections", "jsonb NOT NULL", "[{row, reason}] for every rejected row (row is the 0-based index)"),
    ("samples_new", "integer NOT NULL", "Samples first seen in this batch"),
    ("samples_changed", "integer NOT NULL", "Known samples whose projected facts changed"),
]

CHECKPOINTS: list[Column] = [
    ("projection", "text PRIMARY KEY", "Projection name"),
    ("transaction_id", "xid8 NOT NULL DEFAULT '0'", "Transaction id of the last applied event"),
    ("position", "bigint NOT NULL DEFAULT 0", "Position of the last applied event"),
    ("updated_at", "timestamptz NOT NULL DEFAULT now()", "When the checkpoint last moved"),
]


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS eventstore")
    op.execute("CREATE SCHEMA IF NOT EXISTS projections")
    op.execute("COMMENT ON SCHEMA eventstore IS 'The append-only record of everything the service received'")
    op.execute("COMMENT ON SCHEMA projections IS 'Tables derived from eventstore.events; rebuildable'")

    create_table(
        "eventstore.events",
        "Append-only log: one row per inbound message plus derived events",
        EVENTS,
        "UNIQUE (stream_id, stream_version)",
    )
    op.execute("CREATE UNIQUE INDEX events_dedupe_key ON eventstore.events (dedupe_key) WHERE dedupe_key IS NOT NULL")
    op.execute("CREATE INDEX events_transaction_position ON eventstore.events (transaction_id, position)")
    op.execute("CREATE INDEX events_type_position ON eventstore.events (event_type, position)")
    op.execute("""
        CREATE FUNCTION eventstore.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'eventstore.events is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'restrict_violation';
        END $$""")
    op.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON eventstore.events "
        "FOR EACH ROW EXECUTE FUNCTION eventstore.reject_change()"
    )
    op.execute(
        "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON eventstore.events "
        "FOR EACH STATEMENT EXECUTE FUNCTION eventstore.reject_change()"
    )

    create_table("projections.checkpoints", "How far each projection has applied the log", CHECKPOINTS)
    create_table(
        "projections.samples",
        "One row per sample: a creator's request for a product",
        SAMPLES,
        "UNIQUE (region, platform_product_id, creator_key)",
    )
    op.execute(
        "CREATE INDEX samples_application_id ON projections.samples (application_id) WHERE application_id IS NOT NULL"
    )
    op.execute("CREATE INDEX samples_product_creator ON projections.samples (platform_product_id, platform_creator_id)")
    create_table(
        "projections.sample_contents",
        "One row per posted video or LIVE, per sample",
        CONTENTS,
        "PRIMARY KEY (sample_id, content_key)",
    )
    create_table(
        "projections.sample_status_history",
        "One row per status change of a sample",
        HISTORY,
        "PRIMARY KEY (event_position, sample_id, seq)",
    )
    op.execute(
        "CREATE INDEX sample_status_history_sample ON projections.sample_status_history (sample_id, observed_at)"
    )
    create_table("projections.crawl_batches", "One row per inbound sample crawl batch", BATCHES)

    op.execute("""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_analyst') THEN
            CREATE ROLE ledger_analyst NOLOGIN;
          END IF;
        END $$""")
    for schema in ("eventstore", "projections"):
        op.execute(f"GRANT USAGE ON SCHEMA {schema} TO ledger_analyst")
        op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO ledger_analyst")
        op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO ledger_analyst")


def downgrade() -> None:
    for schema in ("eventstore", "projections"):
        op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE SELECT ON TABLES FROM ledger_analyst")
    op.execute("DROP SCHEMA projections CASCADE")
    op.execute("DROP SCHEMA eventstore CASCADE")
