"""Webhooks, status reports, creators and products; personal data kept out of analysts' reach.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
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


WEBHOOKS: list[Column] = [
    ("event_position", "bigint PRIMARY KEY", "Position of the webhook.received event"),
    ("notification_id", "text", "tts_notification_id; null when TikTok sent none (then deduped on a body hash)"),
    ("type", "integer", "TikTok webhook type, e.g. 56 sample application status change"),
    ("shop_id", "text", "Shop the webhook concerns (creator topics carry creator_open_id instead)"),
    ("creator_open_id", "text", "Creator the webhook concerns, on creator topics"),
    ("occurred_at", "timestamptz", "The webhook's own timestamp"),
    ("received_at", "timestamptz NOT NULL", "When the service received it"),
    ("signature_valid", "boolean", "true: verified; null: no app secret configured, accepted unverified"),
    ("application_id", "text", "Type 56: the sample application id"),
    ("new_status", "text", "Type 56: new_status exactly as sent"),
    (
        "disposition",
        "text NOT NULL",
        "recorded (not about a sample), applied, waiting_for_sample, stale, or unknown_status",
    ),
    ("sample_id", "text", "The sample it was applied to, once it was"),
]

PENDING: list[Column] = [
    ("event_position", "bigint PRIMARY KEY", "Position of the webhook.received event waiting for its sample"),
    ("application_id", "text", "Join key: sample application id"),
    ("platform_product_id", "text", "Join key with platform_creator_id when there is no application id"),
    ("platform_creator_id", "text", "Join key with platform_product_id"),
    ("status", "text NOT NULL", "Canonical status the webhook reports"),
    ("cancel_reason", "text", "Raw cancel status, for the cancel family"),
    ("observed_at", "timestamptz NOT NULL", "The webhook's timestamp, else when it was received"),
]

CREATORS: list[Column] = [
    ("platform_creator_id", "text PRIMARY KEY", "TikTok creator id"),
    ("platform_creator_username", "text", "@handle as last seen"),
    ("platform_creator_display_name", "text", "Display name as last seen"),
    ("region", "text", "Upper-case region as last seen"),
    ("followers", "bigint", "Follower count as last seen"),
    ("whatsapp", "text", "WhatsApp number (personal data: not readable by ledger_analyst)"),
    ("email", "text", "E-mail address (personal data: not readable by ledger_analyst)"),
    ("opted_out", "boolean NOT NULL DEFAULT false", "An operator stopped all chatbot messages to this creator"),
    ("opted_out_reason", "text", "Why, as the operator said"),
    ("messaging_changed_at", "timestamptz", "When the opt-out/opt-in took effect (the message's `at`)"),
    ("first_seen_at", "timestamptz NOT NULL", "First time the creator was seen in any input"),
    ("last_seen_at", "timestamptz NOT NULL", "Latest time the creator was seen in any input"),
]

PRODUCTS: list[Column] = [
    ("platform_product_id", "text PRIMARY KEY", "TikTok Shop product id"),
    ("product_name", "text", "Product name as last seen"),
    ("platform_campaign_id", "text", "Campaign id as last seen"),
    ("platform_campaign_name", "text", "Campaign name as last seen"),
    ("region", "text", "Upper-case region as last seen"),
    ("first_seen_at", "timestamptz NOT NULL", "First time the product was seen"),
    ("last_seen_at", "timestamptz NOT NULL", "Latest time the product was seen"),
]

CATALOG_BATCHES: list[Column] = [
    ("message_id", "text PRIMARY KEY", "AMQP message id of the batch, or a hash of routing key and body"),
    ("event_position", "bigint NOT NULL", "Position of the recorded batch in eventstore.events"),
    ("kind", "text NOT NULL", "creators or products"),
    ("source", "text NOT NULL", "Collector name from the batch"),
    ("received_at", "timestamptz NOT NULL", "When the service received the message"),
    ("rows_total", "integer NOT NULL", "Rows in the batch"),
    ("rows_rejected", "integer NOT NULL", "Rows that could not be applied"),
    ("rejections", "jsonb NOT NULL", "[{row, reason}] for every rejected row (row is the 0-based index)"),
]

EVENT_COLUMNS_FOR_ANALYSTS = (
    "position, event_id, stream_id, stream_version, event_type, event_version, data, "
    "metadata, dedupe_key, transaction_id, recorded_at"
)
CREATOR_COLUMNS_FOR_ANALYSTS = (
    "platform_creator_id, platform_creator_username, platform_creator_display_name, "
    "region, followers, opted_out, opted_out_reason, messaging_changed_at, "
    "first_seen_at, last_seen_at"
)


def upgrade() -> None:
    op.execute("ALTER TABLE eventstore.events ADD COLUMN personal jsonb")
    op.execute(
        "COMMENT ON COLUMN eventstore.events.personal IS "
        "'Personal data split from the body (WhatsApp, e-mail); not readable by ledger_analyst'"
    )
    op.execute("REVOKE SELECT ON eventstore.events FROM ledger_analyst")
    op.execute(f"GRANT SELECT ({EVENT_COLUMNS_FOR_ANALYSTS}) ON eventstore.events TO ledger_analyst")

    create_table("projections.webhooks", "One row per TikTok Shop webhook received", WEBHOOKS)
    op.execute(
        "CREATE UNIQUE INDEX webhooks_notification_id ON projections.webhooks (notification_id) "
        "WHERE notification_id IS NOT NULL"
    )
    create_table(
        "projections.pending_webhooks",
        "Type-56 webhooks whose sample is not known yet; applied when it appears",
        PENDING,
    )
    op.execute("CREATE INDEX pending_webhooks_application ON projections.pending_webhooks (application_id)")
    op.execute(
        "CREATE INDEX pending_webhooks_product_creator ON projections.pending_webhooks "
        "(platform_product_id, platform_creator_id)"
    )
    create_table("projections.creators", "One row per creator", CREATORS)
    op.execute("REVOKE SELECT ON projections.creators FROM ledger_analyst")
    op.execute(f"GRANT SELECT ({CREATOR_COLUMNS_FOR_ANALYSTS}) ON projections.creators TO ledger_analyst")
    create_table("projections.products", "One row per product", PRODUCTS)
    create_table("projections.catalog_batches", "One row per inbound creators or products batch", CATALOG_BATCHES)


def downgrade() -> None:
    for table in ("catalog_batches", "products", "creators", "pending_webhooks", "webhooks"):
        op.execute(f"DROP TABLE projections.{table}")
    op.execute("REVOKE SELECT ON eventstore.events FROM ledger_analyst")
    op.execute("ALTER TABLE eventstore.events DROP COLUMN personal")
    op.execute("GRANT SELECT ON eventstore.events TO ledger_analyst")
