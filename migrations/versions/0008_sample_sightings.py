"""Sightings: what each observation said of its sample's status and content, so that an observation
arriving after a newer one can be folded where it belongs in time.

The samples projection folds observations as they arrive. An observation older than what the sample
has already been seen doing (a collector reading an old page, a delayed webhook) belongs in the middle
of the sample's history; the projection then folds the sample's status and content again from its
sightings in `observed_at` order (projections/sample_replay.py) and rewrites its status history.

- `projections.sample_sightings`: one row per (sample, event) that said something of the status or the
  content.
- `projections.samples.fact_observed_at`: when each known fact was observed, so that an older
  observation arriving late fills only what is unknown and a newer one replaces (empty for rows written
  before this migration: their facts count as observed at `last_seen_at`).
- `projections.samples.sightings_complete`: true when every sighting of the sample is in
  `sample_sightings`. Samples that existed before this migration have no sightings on record; a late
  observation about one of them stays stale, as before. The default is false so that rows inserted
  by replicas of the previous version during a rolling upgrade count as incomplete.
- `projections.sightings_since`: the last event position before this migration. A sample first seen
  at or before it is incomplete in a rebuild too, and is folded by the rules it had before (no replay,
  facts by `last_seen_at`), so a rebuild gives exactly the live result and derives no revision of old
  history.

Stop replicas of the previous version before running it: they do not know `sample.history_revised`
and would record no sightings (docs/operations.md, "Rolling upgrades").

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SIGHTINGS = [
    ("sample_id", "text NOT NULL", "projections.samples.sample_id"),
    ("event_position", "bigint NOT NULL", "eventstore.events.position of the event that carried the observation"),
    ("observed_at", "timestamptz NOT NULL", "When the source saw it (UTC)"),
    ("source", "text NOT NULL", "Who saw it: the crawl's source, the report's source, or webhook"),
    ("status", "text", "The status seen; null when the observation said nothing of the status"),
    ("cancel_reason", "text", "The cancel reason seen with canceled"),
    ("content_count", "integer", "Posts seen when the content drawer was looked at; null when it was not"),
]


def _comment(target: str, text: str) -> None:
    quoted = text.replace("'", "''")
    op.execute(f"COMMENT ON {target} IS '{quoted}'")


def upgrade() -> None:
    body = ",\n  ".join([f"{n} {sql}" for n, sql, _ in SIGHTINGS] + ["PRIMARY KEY (sample_id, event_position)"])
    op.execute(f"CREATE TABLE projections.sample_sightings (\n  {body}\n)")
    _comment("TABLE projections.sample_sightings",
             "One row per observation of a sample's status or content, replayed in observed_at order when an "
             "older observation arrives late")  # fmt: skip
    for name, _, text in SIGHTINGS:
        _comment(f"COLUMN projections.sample_sightings.{name}", text)

    op.execute("ALTER TABLE projections.samples ADD COLUMN fact_observed_at jsonb NOT NULL DEFAULT '{}'")
    _comment("COLUMN projections.samples.fact_observed_at",
             "When each known fact was observed, by column name; a fact not named here was observed at "
             "last_seen_at")  # fmt: skip
    op.execute("ALTER TABLE projections.samples ADD COLUMN sightings_complete boolean NOT NULL DEFAULT false")
    _comment("COLUMN projections.samples.sightings_complete",
             "Every sighting of the sample is in sample_sightings, so a late observation is folded where it "
             "belongs in time; false for samples first seen before migration 0008")  # fmt: skip

    op.execute("CREATE TABLE projections.sightings_since (after_position bigint NOT NULL)")
    op.execute("INSERT INTO projections.sightings_since SELECT coalesce(max(position), 0) FROM eventstore.events")
    _comment("COLUMN projections.sightings_since.after_position",
             "eventstore.events.position: samples first seen at or before it keep no sightings")  # fmt: skip
    _comment("TABLE projections.sightings_since",
             "One row: the last event position before sightings were recorded; samples first seen at or "
             "before it have sightings_complete false")  # fmt: skip


def downgrade() -> None:
    op.execute("DROP TABLE projections.sightings_since")
    op.execute("ALTER TABLE projections.samples DROP COLUMN sightings_complete")
    op.execute("ALTER TABLE projections.samples DROP COLUMN fact_observed_at")
    op.execute("DROP TABLE projections.sample_sightings")
