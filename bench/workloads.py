"""The four workloads, generated from a seed so every run sends the same bytes.

(a) pages of new samples as a collector publishes them (the row shape of `examples/`), with content;
(b) the same pages crawled again: most rows unchanged, a share moving one status forward;
(c) single events on those samples: signed TikTok type-56 webhooks and seller-side status reports;
(d) the fault suite's mixed stream (crawls, webhooks, reports, worker results, opt-outs).

(a) to (c) follow one catalogue of samples, so (b) and (c) move samples (a) introduced: entering
`shipped` or `content_pending` (and `completed` without content) is what schedules chatbot tasks.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from events.webhooks import expected_signature
from tests.faults.publisher import APP_KEY, APP_SECRET, Message, mixed_workload
from tests.support import example

# Collector tab labels in lifecycle order; new samples start in one of the first two.
STEPS = ["Ready to ship", "Shipped", "Content pending", "Completed"]
COMPLETED = len(STEPS) - 1
WEBHOOK_STATUS = {"Ready to ship": "AWAITING_SHIPMENT", "Shipped": "SHIPPED",
                  "Content pending": "CONTENT_PENDING", "Completed": "COMPLETED"}  # fmt: skip
T0 = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
CHANGED_SHARE = 0.10  # of each re-crawled page's rows


@dataclass(frozen=True)
class Workload:
    key: str  # a, b, c, d
    title: str
    unit: str  # what the rates count: "rows" (crawl rows) or "events" (messages)
    units: int
    messages: list[Message]
    description: str


@dataclass
class TrackedSample:
    row: dict[str, Any]  # the row as last crawled
    step: int  # index into STEPS


@dataclass
class Catalogue:
    """The samples (a) introduced, page by page, and where each one stands now."""

    seed: int
    namespace: int  # keeps ids apart when one database gets (a) more than once (growth)
    samples: list[TrackedSample] = field(default_factory=list)
    pages: list[list[int]] = field(default_factory=list)

    def message_id(self, workload: str, n: int) -> str:
        return f"bench-{self.seed}-{self.namespace}-{workload}-{n}"


@cache
def _collector_page() -> dict[str, Any]:
    """Example 9.1: the envelope and row shape of a real collector page (read once, copied per use)."""
    page: dict[str, Any] = example("9_1")
    return page


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _new_row(catalogue: Catalogue, index: int, step: int, with_content: bool, at: datetime) -> dict[str, Any]:
    """A collector row (example 9.1's shape) for sample `index`: five creators per product."""
    templates = _collector_page()["rows"]
    ns = catalogue.namespace
    creator, product = f"74923{ns:02d}{index:012d}", f"17297{ns:02d}{index // 5:012d}"
    # A shallow copy: the template's nested values (empty lists, null) are only ever serialised.
    row: dict[str, Any] = {
        **(templates[0] if with_content else templates[2]),  # row 2 shows no content
        "platformProductId": product, "productName": f"Producto de banco {index // 5}",
        "platformCreatorId": creator, "creatorId": creator, "platformCreatorUsername": f"banco{ns}_{index}",
        "creatorUsername": f"banco{ns}_{index}", "creatorName": f"Banco {index}",
        "platformCreatorDisplayName": f"Banco {index}", "applicationId": f"17310{ns:02d}{index:012d}",
        "status": STEPS[step], "extractedTime": _stamp(at),
    }  # fmt: skip
    if with_content:
        row["promotionName"] = f"Reseña {index}"
    return row


def _page(catalogue: Catalogue, workload: str, n: int, rows: list[dict[str, Any]]) -> Message:
    body = {**_collector_page(), "source": "bench_collector", "rows": rows}
    return Message("ingest", "samples.crawled", json.dumps(body).encode(), catalogue.message_id(workload, n))


def new_pages(catalogue: Catalogue, rng: random.Random, pages: int, rows_per_page: int) -> Workload:
    """(a): every row a sample never seen; 45 % ready to ship, 45 % shipped, 10 % completed with no
    content (which schedules a `no_content` reminder); 80 % of rows show a video."""
    messages = []
    for n in range(pages):
        at, indices = T0 + timedelta(seconds=n), []
        for _ in range(rows_per_page):
            index, draw = len(catalogue.samples), rng.random()
            step = COMPLETED if draw < 0.10 else (0 if draw < 0.55 else 1)
            with_content = step != COMPLETED and rng.random() < 0.9
            catalogue.samples.append(TrackedSample(_new_row(catalogue, index, step, with_content, at), step))
            indices.append(index)
        catalogue.pages.append(indices)
        messages.append(_page(catalogue, "a", n, [catalogue.samples[i].row for i in indices]))
    return Workload("a", "new pages", "rows", pages * rows_per_page, messages,
                    f"{pages} pages × {rows_per_page} new rows")  # fmt: skip


def recrawls(catalogue: Catalogue, rng: random.Random) -> Workload:
    """(b): each page of (a) again, in order; 10 % of its rows move one status forward with a newer
    extractedTime, the rest are the same rows as before."""
    messages, rows_total = [], 0
    for n, indices in enumerate(catalogue.pages):
        movable = [i for i in indices if catalogue.samples[i].step < COMPLETED]
        at = T0 + timedelta(days=1, seconds=n)
        for i in rng.sample(movable, min(len(movable), round(len(indices) * CHANGED_SHARE))):
            sample = catalogue.samples[i]
            sample.step += 1
            sample.row = {**sample.row, "status": STEPS[sample.step], "extractedTime": _stamp(at)}
        messages.append(_page(catalogue, "b", n, [catalogue.samples[i].row for i in indices]))
        rows_total += len(indices)
    return Workload("b", "re-crawled pages", "rows", rows_total, messages,
                    f"{len(messages)} pages again, {CHANGED_SHARE:.0%} of rows change status")  # fmt: skip


def _webhook(catalogue: Catalogue, n: int, sample: TrackedSample, at: datetime) -> Message:
    row = sample.row
    raw = json.dumps({
        "type": 56, "tts_notification_id": f"8{catalogue.namespace:02d}{catalogue.seed % 1000:03d}{n:010d}",
        "shop_id": "7495123456789012345", "timestamp": int(at.timestamp()),
        "data": {"application_id": row["applicationId"], "new_status": WEBHOOK_STATUS[STEPS[sample.step]],
                 "creator": {"creator_open_id": row["platformCreatorId"]},
                 "product": {"id": row["platformProductId"], "sku_id": "1"}},
    }, separators=(",", ":")).encode()  # fmt: skip
    headers = {"authorization": expected_signature(APP_KEY, APP_SECRET, raw)}
    return Message("webhooks", "tiktok.shop.56", raw, catalogue.message_id("c", n), headers)


def _report(catalogue: Catalogue, n: int, sample: TrackedSample, at: datetime) -> Message:
    row = sample.row
    body = {"region": "MX", "platformProductId": row["platformProductId"],
            "platformCreatorId": row["platformCreatorId"], "status": STEPS[sample.step],
            "observedAt": at.isoformat(), "source": "bench_monitor", "applicationId": row["applicationId"]}  # fmt: skip
    return Message("state", "sample.status_reported", json.dumps(body).encode(), catalogue.message_id("c", n))


def single_events(catalogue: Catalogue, rng: random.Random, count: int) -> Workload:
    """(c): webhooks and status reports, alternating, each moving a not yet completed sample one
    status forward (a sample may be moved more than once when there are more events than samples)."""
    order = list(range(len(catalogue.samples)))
    rng.shuffle(order)
    messages: list[Message] = []
    cursor = 0
    while len(messages) < count and any(catalogue.samples[i].step < COMPLETED for i in order):
        sample = catalogue.samples[order[cursor % len(order)]]
        cursor += 1
        if sample.step == COMPLETED:
            continue
        sample.step += 1
        n, at = len(messages), T0 + timedelta(days=2, seconds=len(messages))
        messages.append((_webhook if n % 2 == 0 else _report)(catalogue, n, sample, at))
    return Workload("c", "single events", "events", len(messages), messages,
                    f"{len(messages)} webhooks and status reports")  # fmt: skip


def mixed(seed: int, count: int) -> Workload:
    """(d): the fault suite's mixed workload, unchanged."""
    return Workload("d", "mixed stream", "events", count, mixed_workload(seed, count),
                    f"{count} mixed messages")  # fmt: skip


def standard_workloads(seed: int, pages: int, rows_per_page: int, singles: int, mixed_count: int) -> list[Workload]:
    """(a) to (d) in the order they are sent; the same arguments give the same messages."""
    rng = random.Random(seed)
    catalogue = Catalogue(seed, namespace=0)
    return [
        new_pages(catalogue, rng, pages, rows_per_page),
        recrawls(catalogue, rng),
        single_events(catalogue, rng, singles),
        mixed(seed, mixed_count),
    ]
