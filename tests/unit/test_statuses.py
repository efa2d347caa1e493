"""The status vocabulary (docs/domain.md, "Statuses"): every spelling maps to one canonical status."""

from __future__ import annotations

import pytest

from events.statuses import LIFECYCLE, Status, UnknownStatus, canonical_status, is_regression

COLLECTOR_LABELS = [
    ("To review", Status.TO_REVIEW),
    ("Ready to ship", Status.READY_TO_SHIP),
    ("Shipped", Status.SHIPPED),
    ("Content pending", Status.CONTENT_PENDING),
    ("Completed", Status.COMPLETED),
    ("Canceled", Status.CANCELED),
    ("Cancelled", Status.CANCELED),
]


@pytest.mark.parametrize(("label", "expected"), COLLECTOR_LABELS)
def test_every_collector_tab_label_maps_to_its_canonical_status(label: str, expected: Status) -> None:
    assert canonical_status(label) is expected


@pytest.mark.parametrize(("label", "expected"), COLLECTOR_LABELS)
def test_collector_labels_compare_case_insensitively(label: str, expected: Status) -> None:
    assert canonical_status(label.upper()) is expected
    assert canonical_status(label.lower()) is expected
    assert canonical_status(label.swapcase()) is expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("to-review", Status.TO_REVIEW),
        ("to_review", Status.TO_REVIEW),
        ("Ready-to-ship", Status.READY_TO_SHIP),
        ("READY_TO_SHIP", Status.READY_TO_SHIP),
        ("content_pending", Status.CONTENT_PENDING),
        ("Content-Pending", Status.CONTENT_PENDING),
        ("ready_to-ship", Status.READY_TO_SHIP),
    ],
)
def test_dashes_and_underscores_count_as_spaces(label: str, expected: Status) -> None:
    assert canonical_status(label) is expected


def test_surrounding_and_repeated_whitespace_is_ignored() -> None:
    assert canonical_status("  Ready   to  ship ") is Status.READY_TO_SHIP


def test_canonical_values_themselves_are_accepted() -> None:
    for status in Status:
        assert canonical_status(status.value) is status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ready to review", Status.TO_REVIEW),
        ("review", Status.TO_REVIEW),
        ("in progress", Status.CONTENT_PENDING),
        ("In Progress", Status.CONTENT_PENDING),
        ("in_progress", Status.CONTENT_PENDING),
        ("Ready-To-Review", Status.TO_REVIEW),
    ],
)
def test_seller_monitor_texts_map_to_canonical_statuses(text: str, expected: Status) -> None:
    assert canonical_status(text) is expected


MONITOR_CODES = [
    (1, Status.TO_REVIEW),
    (2, Status.READY_TO_SHIP),
    (3, Status.SHIPPED),
    (4, Status.CONTENT_PENDING),
    (5, Status.COMPLETED),
    (6, Status.CANCELED),
]


@pytest.mark.parametrize(("code", "expected"), MONITOR_CODES)
def test_monitor_integer_codes_follow_lifecycle_order(code: int, expected: Status) -> None:
    assert canonical_status(code) is expected


@pytest.mark.parametrize(("code", "expected"), MONITOR_CODES)
def test_monitor_codes_as_strings_mean_the_same(code: int, expected: Status) -> None:
    assert canonical_status(str(code)) is expected
    assert canonical_status(f" {code} ") is expected


@pytest.mark.parametrize(
    "value",
    ["", "   ", "shipping", "delivered", "PENDING_REVIEW", "to reviewed", "done", 0, 7, -1, "0", "7", "12", "1.0"],
)
def test_unknown_status_values_raise_unknown_status_never_guess(value: object) -> None:
    with pytest.raises(UnknownStatus):
        canonical_status(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_status_codes(value: bool) -> None:
    with pytest.raises(UnknownStatus):
        canonical_status(value)


def test_unknown_status_message_names_the_value() -> None:
    with pytest.raises(UnknownStatus, match="delivered"):
        canonical_status("delivered")


def test_unknown_status_is_a_value_error() -> None:
    assert issubclass(UnknownStatus, ValueError)


def test_unicode_superscript_digit_is_an_unknown_status_not_a_crash() -> None:
    with pytest.raises(UnknownStatus):
        canonical_status("²")


def test_lifecycle_order_matches_domain() -> None:
    assert LIFECYCLE == (
        Status.TO_REVIEW,
        Status.READY_TO_SHIP,
        Status.SHIPPED,
        Status.CONTENT_PENDING,
        Status.COMPLETED,
    )


def test_completed_to_shipped_is_a_regression() -> None:
    assert is_regression(Status.COMPLETED, Status.SHIPPED) is True


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Status.READY_TO_SHIP, Status.TO_REVIEW),
        (Status.SHIPPED, Status.READY_TO_SHIP),
        (Status.CONTENT_PENDING, Status.SHIPPED),
        (Status.COMPLETED, Status.TO_REVIEW),
        (Status.COMPLETED, Status.CONTENT_PENDING),
    ],
)
def test_any_backwards_move_in_lifecycle_is_a_regression(before: Status, after: Status) -> None:
    assert is_regression(before, after) is True


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Status.TO_REVIEW, Status.READY_TO_SHIP),
        (Status.READY_TO_SHIP, Status.SHIPPED),
        (Status.SHIPPED, Status.CONTENT_PENDING),
        (Status.CONTENT_PENDING, Status.COMPLETED),
        (Status.TO_REVIEW, Status.COMPLETED),
    ],
)
def test_forward_moves_are_not_regressions(before: Status, after: Status) -> None:
    assert is_regression(before, after) is False


@pytest.mark.parametrize("before", [None, *LIFECYCLE, Status.CANCELED])
def test_moving_to_canceled_is_never_a_regression(before: Status | None) -> None:
    assert is_regression(before, Status.CANCELED) is False


@pytest.mark.parametrize("after", LIFECYCLE)
def test_leaving_canceled_is_always_a_regression(after: Status) -> None:
    assert is_regression(Status.CANCELED, after) is True


@pytest.mark.parametrize("status", list(Status))
def test_staying_in_the_same_status_is_not_a_regression(status: Status) -> None:
    assert is_regression(status, status) is False


@pytest.mark.parametrize("after", list(Status))
def test_first_sighting_is_never_a_regression(after: Status) -> None:
    assert is_regression(None, after) is False
