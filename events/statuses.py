"""The status vocabulary: canonical statuses and every spelling sources use for them (docs/domain.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Status(StrEnum):
    TO_REVIEW = "to_review"
    READY_TO_SHIP = "ready_to_ship"
    SHIPPED = "shipped"
    CONTENT_PENDING = "content_pending"
    COMPLETED = "completed"
    CANCELED = "canceled"


LIFECYCLE: tuple[Status, ...] = (
    Status.TO_REVIEW,
    Status.READY_TO_SHIP,
    Status.SHIPPED,
    Status.CONTENT_PENDING,
    Status.COMPLETED,
)

# Collector tab labels and seller-side monitor texts, compared lower-case with - and _ as spaces.
_LABELS: dict[str, Status] = {
    "to review": Status.TO_REVIEW,
    "ready to review": Status.TO_REVIEW,
    "review": Status.TO_REVIEW,
    "ready to ship": Status.READY_TO_SHIP,
    "shipped": Status.SHIPPED,
    "content pending": Status.CONTENT_PENDING,
    "in progress": Status.CONTENT_PENDING,
    "completed": Status.COMPLETED,
    "canceled": Status.CANCELED,
    "cancelled": Status.CANCELED,
}
_CODES: dict[int, Status] = {i + 1: s for i, s in enumerate((*LIFECYCLE, Status.CANCELED))}


class UnknownStatus(ValueError):
    """A status value no source vocabulary knows; the observation carrying it is rejected."""


def canonical_status(value: Any) -> Status:
    """Map a collector label, a monitor text or a monitor code 1-6 to a canonical status."""
    if isinstance(value, bool):
        raise UnknownStatus(f"unknown status {value!r}")
    if isinstance(value, int):
        code = value
    else:
        text = " ".join(str(value).strip().lower().replace("-", " ").replace("_", " ").split())
        if text in _LABELS:
            return _LABELS[text]
        if not (text.isascii() and text.isdigit()):  # "²".isdigit() is True, int("²") fails
            raise UnknownStatus(f"unknown status {value!r}")
        code = int(text)
    if code in _CODES:
        return _CODES[code]
    raise UnknownStatus(f"unknown status code {value!r} (expected 1-6)")


def is_regression(before: Status | None, after: Status) -> bool:
    """A move backwards in the lifecycle. Canceling is never one; leaving `canceled` always is."""
    if before is None or after == Status.CANCELED or before == after:
        return False
    if before == Status.CANCELED:
        return True
    return LIFECYCLE.index(after) < LIFECYCLE.index(before)


# TikTok webhook type 56 `new_status`. The cancel family all mean `canceled`; the raw value is kept
# as the cancel reason.
_WEBHOOK: dict[str, Status] = {
    "PENDING": Status.TO_REVIEW,
    "AWAITING_SHIPMENT": Status.READY_TO_SHIP,
    "SHIPPED": Status.SHIPPED,
    "CONTENT_PENDING": Status.CONTENT_PENDING,
    "COMPLETED": Status.COMPLETED,
    "OPS_COMPLETED": Status.COMPLETED,
}
WEBHOOK_CANCEL_FAMILY = frozenset(
    {
        "REJECT_CANCELLED",
        "OVERDUE_CANCELLED",
        "UNFULFILL_CANCELLED",
        "DEL_OPEN_COLLAB",
        "SELLER_NOT_SHIP_CANCELLED",
        "WITHDRAW_CANCELLED",
        "UNFULFILLABLE_CANCELLED",
        "OPS_CANCELLED",
        "OPS_FAILED",
    }
)


def webhook_status(value: str) -> tuple[Status, str | None]:
    """A type-56 `new_status` → (canonical status, cancel reason or None)."""
    raw = value.strip().upper()
    if raw in _WEBHOOK:
        return _WEBHOOK[raw], None
    if raw in WEBHOOK_CANCEL_FAMILY:
        return Status.CANCELED, raw
    raise UnknownStatus(f"unknown webhook sample status {value!r}")
