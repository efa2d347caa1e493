"""Pure reading of a recorded crawl batch into per-sample observations, content sightings and rejections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.crawl import ContentItem, RejectedRow, SampleRow, content_count_seen, content_was_expanded, read_row
from events.sample_events import CrawlBatchRecorded
from projections.sample_state import FACT_FIELDS, Observation


@dataclass(frozen=True)
class ContentSighting:
    sample_id: str
    item: ContentItem
    observed_at: datetime


@dataclass(frozen=True)
class BatchReading:
    source: str
    rows_total: int
    content_expanded: bool
    observations: list[Observation]
    contents: list[ContentSighting]
    rejected: list[RejectedRow]


def read_crawl_batch(batch: CrawlBatchRecorded, received_at: datetime) -> BatchReading:
    """One observation per sample in the batch (its rows merged), plus every content row it showed."""
    rows = batch.rows
    expanded = content_was_expanded(batch.options)
    source = batch.source
    groups: dict[str, list[SampleRow]] = {}
    rejected: list[RejectedRow] = []
    for index, raw in enumerate(rows):
        read = read_row_safely(index, raw)
        if isinstance(read, RejectedRow):
            rejected.append(read)
        else:
            groups.setdefault(read.sample_id, []).append(read)
    observations: list[Observation] = []
    contents: list[ContentSighting] = []
    for sample_rows in groups.values():
        observation, items = _observe(sample_rows, source, expanded, received_at)
        observations.append(observation)
        contents.extend(ContentSighting(observation.sample_id, item, observation.observed_at) for item in items)
    return BatchReading(source, len(rows), expanded, observations, contents, rejected)


def read_row_safely(index: int, raw: Any) -> SampleRow | RejectedRow:
    """A row the reader cannot cope with is rejected alone: it must not fail its batch, and in a
    projection it must not stop the log from being applied."""
    try:
        return read_row(index, raw)
    except Exception as exc:
        return RejectedRow(index, f"unreadable row ({type(exc).__name__})")


def _observe(
    rows: list[SampleRow], source: str, expanded: bool, received_at: datetime
) -> tuple[Observation, list[ContentItem]]:
    # Rows of one sample in one page are one sighting; the latest row wins where they disagree.
    ordered = sorted(rows, key=lambda r: r.observed_at or received_at)
    facts: dict[str, Any] = {}
    status = None
    items: dict[str, ContentItem] = {}
    for row in ordered:
        for name in FACT_FIELDS:
            value = getattr(row, name)
            if value is not None:
                facts[name] = value
        status = row.status or status
        if row.content is not None:
            items[row.content.key] = row.content
    last = ordered[-1]
    content_count = content_count_seen(expanded, len(items))
    observation = Observation(
        sample_id=last.sample_id,
        region=last.region,
        platform_product_id=last.platform_product_id,
        creator_key=last.creator_key,
        observed_at=last.observed_at or received_at,
        source=source,
        facts=facts,
        status=status,
        content_count=content_count,
    )
    return observation, list(items.values())
