"""Collector rows and batches (docs/domain.md "Facts"), read without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from events.catalog import CreatorRow, read_creator_row
from events.crawl import (
    ContentItem,
    RejectedRow,
    SampleRow,
    content_was_expanded,
    read_content,
    read_row,
)
from events.identity import sample_id
from events.sample_events import CrawlBatchRecorded
from events.statuses import Status
from projections.crawl_reading import read_crawl_batch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RECEIVED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def example(prefix: str) -> dict[str, Any]:
    (path,) = EXAMPLES.glob(f"{prefix}_*.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def ok(index: int, row: Any) -> SampleRow:
    read = read_row(index, row)
    assert isinstance(read, SampleRow), read
    return read


def rejected(index: int, row: Any) -> RejectedRow:
    read = read_row(index, row)
    assert isinstance(read, RejectedRow), read
    return read


def content(row: dict[str, Any]) -> ContentItem:
    item = read_content(row)
    assert item is not None
    return item


def snake_case(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


BASE = {"platformProductId": "p1", "platformCreatorId": "c1", "status": "Shipped"}


def test_camel_and_snake_case_rows_read_to_the_same_sample() -> None:
    camel = ok(0, {**BASE, "productName": "Termo", "stock": "1,200", "extractedTime": "2026-04-20 03:15:42"})
    snake = ok(
        0,
        {snake_case(k): v for k, v in {**BASE, "productName": "Termo", "stock": "1,200"}.items()}
        | {"extracted_time": "2026-04-20 03:15:42"},
    )
    assert camel == snake
    assert camel.sample_id == sample_id("MX", "p1", "c1")
    assert camel.product_name == "Termo"
    assert camel.stock == 1200


def test_unknown_status_rejects_the_row_naming_the_value() -> None:
    read = rejected(3, {**BASE, "status": "Delivered"})
    assert read.index == 3
    assert "Delivered" in read.reason


@pytest.mark.parametrize("row", [{"platformCreatorId": "c1"}, {**BASE, "platformProductId": "  "}])
def test_missing_product_id_rejects_the_row(row: dict[str, Any]) -> None:
    assert "platformProductId" in rejected(0, row).reason


def test_row_without_creator_id_or_username_is_rejected() -> None:
    read = rejected(0, {"platformProductId": "p1", "status": "Shipped", "platformCreatorUsername": " "})
    assert "creator" in read.reason


@pytest.mark.parametrize("row", ["text", 7, None, ["a"]])
def test_a_row_that_is_not_an_object_is_rejected(row: Any) -> None:
    assert isinstance(read_row(0, row), RejectedRow)


def test_username_only_row_keys_on_lower_cased_handle_without_at() -> None:
    read = ok(0, {"platformProductId": "p1", "platformCreatorUsername": "@Studio.Ana", "status": "Shipped"})
    assert read.creator_key == "studio.ana"
    assert read.platform_creator_id is None
    assert read.sample_id == sample_id("MX", "p1", "studio.ana")
    assert ok(0, {**BASE, "platformCreatorUsername": "@studio.ana"}).creator_key == "c1"  # the id wins


@pytest.mark.parametrize(("region", "expected"), [(None, "MX"), ("", "MX"), ("mx", "MX"), (" fr ", "FR")])
def test_region_defaults_to_mx_and_is_upper_cased(region: str | None, expected: str) -> None:
    read = ok(0, {**BASE, "region": region})
    assert read.region == expected
    assert read.sample_id == sample_id(expected, "p1", "c1")


def test_row_status_uses_the_vocabulary_and_a_missing_status_is_unknown_not_rejected() -> None:
    assert ok(0, {**BASE, "status": "cancelled"}).status is Status.CANCELED
    assert ok(0, {**BASE, "status": "content-pending"}).status is Status.CONTENT_PENDING
    assert ok(0, {"platformProductId": "p1", "platformCreatorId": "c1"}).status is None
    assert ok(0, {**BASE, "status": ""}).status is None


def test_row_facts_are_read_leniently_and_unreadable_ones_are_unknown_without_rejecting() -> None:
    read = ok(0, {**BASE, "stock": "12.4K", "availableSampleCount": "25", "postRate": "54%", "isShowcase": 1})
    assert (read.stock, read.available_sample_count, read.post_rate, read.is_showcase) == (
        12400,
        25,
        Decimal("0.54"),
        True,
    )
    read = ok(0, {**BASE, "stock": "--", "availableSampleCount": "n/a", "postRate": "?", "isShowcase": "maybe"})
    assert (read.stock, read.available_sample_count, read.post_rate, read.is_showcase) == (None, None, None, None)


def test_video_row_is_content_with_lenient_metrics() -> None:
    row = {k: v for k, v in example("9_1")["rows"][0].items() if not k.endswith(("Count", "TotalAmount"))}
    item = read_content(row)  # only the display shapes: "12.4K", "853", "$1,351.57"
    title, posted = "Mis brochas favoritas #tiktokshop", "2026-04-12 18:03"
    assert item == ContentItem("video", title, posted, 12400, 853, 41, 7, Decimal("1351.57"))


CONTENT_TYPES = [("1", "video"), ("2", "live"), ("video", "video"), ("LIVE", "live"), ("", "video"), (None, "video")]


@pytest.mark.parametrize(("raw_type", "expected"), CONTENT_TYPES)
def test_content_type_legacy_1_is_video_2_is_live_untyped_is_video(raw_type: str, expected: str) -> None:
    assert content({"type": raw_type, "promotion_name": "x"}).content_type == expected


@pytest.mark.parametrize("raw_type", ["logistics", "Logistics"])
def test_logistics_entry_is_never_content(raw_type: str) -> None:
    assert read_content({"type": raw_type, "promotionName": "In transit", "promotionTime": "2026-04-18 09:12"}) is None
    assert read_content(example("9_5")["rows"][0]) is None  # a row carrying a logisticsSnapshot


def test_empty_promotion_row_is_not_content() -> None:
    row = example("9_1")["rows"][2]
    assert row["promotionName"] == ""
    assert read_content(row) is None
    assert read_content({}) is None


EXPANDED = [{"expandViewContent": True}, {"expandViewContent": "true"}, {"expand_view_content": 1}]
NOT_EXPANDED = [{"expandViewContent": False}, {"expandViewContent": "false"}, {"tabs": ["Completed"]}, {}, None]


@pytest.mark.parametrize("options", EXPANDED)
def test_drawer_expanded_when_options_say_so(options: dict[str, Any]) -> None:
    assert content_was_expanded(options) is True


@pytest.mark.parametrize("options", NOT_EXPANDED)
def test_drawer_not_expanded_when_false_or_absent(options: dict[str, Any] | None) -> None:
    assert content_was_expanded(options) is False


@pytest.mark.parametrize("prefix", ["9_1", "9_2", "9_3", "9_4", "9_5"])
def test_every_example_batch_has_a_valid_envelope(prefix: str) -> None:
    assert CrawlBatchRecorded.from_data(example(prefix)).rows


@pytest.mark.parametrize("body", [{"source": "x", "rows": []}, {"source": " ", "rows": [{}]}, {"rows": [{}]}])
def test_envelope_without_source_or_rows_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CrawlBatchRecorded.from_data(body)


def test_example_9_1_gives_one_observation_per_creator_with_content_counts() -> None:
    reading = read_crawl_batch(CrawlBatchRecorded.from_data(example("9_1")), RECEIVED)
    assert reading.rows_total == 4
    assert reading.rejected == []
    assert reading.content_expanded is True
    assert [o.content_count for o in reading.observations] == [2, 0, 1]
    lupita, marisol, dani = reading.observations
    assert lupita.platform_product_id == marisol.platform_product_id
    assert lupita.sample_id != marisol.sample_id
    assert lupita.sample_id == sample_id("MX", "1729487365012345678", "7494011122233344455")
    assert marisol.sample_id == sample_id("MX", "1729487365012345678", "7495566677788899900")
    assert {o.status for o in reading.observations} == {Status.COMPLETED}
    assert dani.observed_at == datetime(2026, 4, 20, 3, 16, 31, tzinfo=UTC)
    facts = lupita.facts
    assert (facts["post_rate"], facts["is_showcase"], facts["stock"]) == (Decimal("0.67"), True, 340)


def test_example_9_1_content_belongs_to_the_creator_sample_not_the_product() -> None:
    reading = read_crawl_batch(CrawlBatchRecorded.from_data(example("9_1")), RECEIVED)
    lupita, marisol, dani = reading.observations
    titles = [c.item.title for c in reading.contents if c.sample_id == lupita.sample_id]
    assert titles == ["Mis brochas favoritas #tiktokshop", "Tutorial rápido de ojos ahumados"]
    assert [c for c in reading.contents if c.sample_id == marisol.sample_id] == []
    (live,) = [c.item for c in reading.contents if c.sample_id == dani.sample_id]
    assert (live.content_type, live.view_count, live.order_amount) == ("live", 1100, Decimal("597.30"))


def test_example_9_3_without_expanded_drawer_says_nothing_about_content() -> None:
    reading = read_crawl_batch(CrawlBatchRecorded.from_data(example("9_3")), RECEIVED)
    assert reading.content_expanded is False
    assert [o.content_count for o in reading.observations] == [None, None]
    assert [o.region for o in reading.observations] == ["MX", "FR"]
    assert reading.contents == []


def test_batch_without_options_says_nothing_about_content_and_reads_snake_case() -> None:
    reading = read_crawl_batch(CrawlBatchRecorded.from_data(example("9_4")), RECEIVED)
    assert [o.content_count for o in reading.observations] == [None, None]
    assert [o.status for o in reading.observations] == [Status.TO_REVIEW, Status.CANCELED]
    assert [o.region for o in reading.observations] == ["MX", "MX"]
    assert reading.observations[1].creator_key == "7488887776665554443"


@pytest.mark.parametrize(("prefix", "counts"), [("9_2", [0, 0]), ("9_5", [0])])  # 9_5 shows only logistics
def test_expanded_batch_without_content_rows_reports_zero(prefix: str, counts: list[int]) -> None:
    reading = read_crawl_batch(CrawlBatchRecorded.from_data(example(prefix)), RECEIVED)
    assert [o.content_count for o in reading.observations] == counts
    assert reading.contents == []


def test_one_bad_row_never_rejects_the_rest_of_the_batch() -> None:
    body = example("9_1")
    body["rows"].insert(1, {**body["rows"][0], "status": "Teleported"})
    body["rows"].append({"status": "Shipped", "platformCreatorId": "c9"})
    body["rows"].append("garbage")
    reading = read_crawl_batch(CrawlBatchRecorded.from_data(body), RECEIVED)
    assert reading.rows_total == 7
    assert [r.index for r in reading.rejected] == [1, 5, 6]
    assert "Teleported" in reading.rejected[0].reason
    assert [o.content_count for o in reading.observations] == [2, 0, 1]


def test_observed_at_is_extracted_time_else_received_at() -> None:
    rows = [
        {**BASE, "extractedTime": "2026-04-20 03:15:42"},
        {**BASE, "platformCreatorId": "c2"},
        {**BASE, "platformCreatorId": "c3", "extractedTime": "not a time"},
    ]
    reading = read_crawl_batch(CrawlBatchRecorded.from_data({"source": "s", "rows": rows}), RECEIVED)
    extracted = datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)
    assert [o.observed_at for o in reading.observations] == [extracted, RECEIVED, RECEIVED]


def test_content_seen_without_expanded_drawer_still_proves_content() -> None:
    rows = [{**BASE, "type": "video", "promotionName": "A"}, {**BASE, "platformCreatorId": "c2"}]
    body = {"source": "s", "options": {"expandViewContent": False}, "rows": rows}
    assert [o.content_count for o in read_crawl_batch(CrawlBatchRecorded.from_data(body), RECEIVED).observations] == [
        1,
        None,
    ]


def test_rows_of_one_sample_merge_latest_wins_and_unknown_never_erases() -> None:
    same_video = {**BASE, "type": "video", "promotionName": "A"}
    rows = [
        {**same_video, "extractedTime": "2026-04-20 03:00:00", "stock": "10", "productName": "Old"},
        {**same_video, "extractedTime": "2026-04-20 04:00:00", "stock": "--", "productName": "New", "status": "5"},
    ]
    body = {"source": "s", "options": {"expandViewContent": True}, "rows": rows}
    (obs,) = read_crawl_batch(CrawlBatchRecorded.from_data(body), RECEIVED).observations
    assert obs.facts["stock"] == 10
    assert obs.facts["product_name"] == "New"
    assert obs.status is Status.COMPLETED
    assert obs.content_count == 1
    assert obs.observed_at == datetime(2026, 4, 20, 4, tzinfo=UTC)


def test_odd_status_digit_rejects_only_its_row() -> None:
    rows = [{**BASE, "status": "²"}, {**BASE, "platformCreatorId": "c2"}]
    reading = read_crawl_batch(CrawlBatchRecorded.from_data({"source": "s", "rows": rows}), RECEIVED)
    assert [r.index for r in reading.rejected] == [0]
    assert len(reading.observations) == 1


FR_VIDEO = {**BASE, "region": "FR", "type": "video", "promotionName": "Ma routine", "promotionView": "1,2K"}


def test_fr_row_reads_a_decimal_comma_view_count_as_1200_not_12000() -> None:
    read = ok(0, {**FR_VIDEO, "promotionEarn": "1.351,57 €", "stock": "1.200", "postRate": "54,5 %"})
    assert read.content is not None
    assert (read.content.view_count, read.content.order_amount) == (1200, Decimal("1351.57"))
    assert (read.stock, read.post_rate) == (1200, Decimal("0.545"))


def test_read_content_reads_the_row_region_like_read_row() -> None:
    assert content(FR_VIDEO).view_count == 1200
    assert content({**FR_VIDEO, "region": "fr"}).view_count == 1200


def test_decimal_comma_shape_in_a_decimal_point_region_is_unknown_not_a_guess() -> None:
    read = ok(0, {**FR_VIDEO, "region": "MX", "promotionEarn": "1.351,57 €"})
    assert read.content is not None
    assert (read.content.view_count, read.content.order_amount) == (None, None)


def test_row_without_region_reads_numbers_as_its_default_region_mx() -> None:
    read = ok(0, {key: value for key, value in FR_VIDEO.items() if key != "region"} | {"stock": "12,400"})
    assert read.region == "MX"
    assert read.stock == 12400
    assert read.content is not None
    assert read.content.view_count is None


@pytest.mark.parametrize(
    ("region", "followers", "expected"),
    [
        ("FR", "1,2K", 1200),
        ("MX", "12,400", 12400),
        (None, "12.4K", 12400),
        (None, "1,2K", None),
        (None, "12,400", None),
    ],
)
def test_creator_row_followers_are_read_by_the_row_region(
    region: str | None, followers: str, expected: int | None
) -> None:
    read = read_creator_row(0, {"platformCreatorId": "c1", "region": region, "followers": followers}, {})
    assert isinstance(read, CreatorRow)
    assert read.followers == expected
