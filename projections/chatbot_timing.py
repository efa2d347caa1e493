"""When a due chatbot task may actually go out, and what id it carries (DOMAIN.md "The chatbot rules").

A task that falls due in the region's quiet hours waits until they end; a creator gets at most `cap`
tasks in any 24 hours, and more are deferred, never dropped. Task ids are derived from the business
key so a re-sent run carries the same id. Pure: every time comes in as an argument, all in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

from service.quiet_hours import QuietHours

REGION_TIMEZONES: dict[str, str] = {
    "MX": "America/Mexico_City",
    "US": "America/New_York",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "GB": "Europe/London",
    "ES": "Europe/Madrid",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "IT": "Europe/Rome",
    "ID": "Asia/Jakarta",
    "MY": "Asia/Kuala_Lumpur",
    "PH": "Asia/Manila",
    "SG": "Asia/Singapore",
    "TH": "Asia/Bangkok",
    "VN": "Asia/Ho_Chi_Minh",
    "JP": "Asia/Tokyo",
}

DAILY_WINDOW = timedelta(hours=24)
MAX_RETRIES = 2
RETRY_DELAY = timedelta(hours=1)
OUTCOMES = ("sent", "failed", "skipped")


def region_timezone(region: str) -> ZoneInfo:
    """The region's local zone; an unknown region falls back to UTC rather than failing the dispatch."""
    return ZoneInfo(REGION_TIMEZONES.get(region.upper(), "UTC"))


def task_id(sample_id: str, scenario: str, run_no: int) -> str:
    """The same run of the same scenario always gets the same id, so workers can spot a repeat."""
    return str(uuid5(NAMESPACE_URL, f"chatbot-task:{sample_id}:{scenario}:{run_no}"))


def after_quiet_hours(moment: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime:
    """`moment` if it is outside the quiet hours in local time, else the instant they end."""
    local = moment.astimezone(tz)
    if quiet is None or not quiet.contains(local.time()):
        return moment.astimezone(UTC)
    end_date = local.date()
    # In a window that wraps midnight, a time after the start belongs to the night that ends tomorrow.
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_date += timedelta(days=1)
    # zoneinfo resolves the local wall time with the offset in force that day, so DST is handled.
    return datetime.combine(end_date, quiet.end, tzinfo=tz).astimezone(UTC)


def after_daily_cap(
    moment: datetime, issued: Sequence[datetime], cap: int, window: timedelta = DAILY_WINDOW
) -> datetime:
    """The earliest instant from `moment` at which fewer than `cap` of `issued` fall in the trailing window."""
    if cap <= 0:
        raise ValueError(f"the per-creator cap must be at least 1, got {cap}")
    # The count only drops when an issued task leaves the window, so those are the only candidates.
    candidates = sorted({moment, *(i + window for i in issued if i + window > moment)})
    for candidate in candidates:
        if _issued_in_window(candidate, issued, window) < cap:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable: after the last issued task leaves the window none is in it")


def dispatch_time(
    due_at: datetime,
    now: datetime,
    *,
    quiet: QuietHours | None,
    tz: ZoneInfo,
    issued: Sequence[datetime],
    cap: int,
) -> datetime:
    """The earliest instant, not before due or now, that is outside quiet hours and under the cap."""
    moment = max(due_at, now)
    while True:
        # Waiting for the cap can land in quiet hours and waiting for morning can meet the cap again.
        later = after_daily_cap(after_quiet_hours(moment, quiet, tz), issued, cap)
        if later == moment:
            return later.astimezone(UTC)
        moment = later


@dataclass(frozen=True)
class TaskAttempts:
    """A published task and what the workers said of it."""

    task_id: str
    publications: int
    outcome: str | None = None
    closed: bool = False
    retry_at: datetime | None = None


def on_worker_result(task: TaskAttempts, *, outcome: str, retryable: bool, at: datetime) -> TaskAttempts:
    """Close the task, or plan one more publication under the same id when a retry still makes sense."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown worker outcome {outcome!r}; expected one of {OUTCOMES}")
    if task.closed:
        return task  # a late or repeated report cannot reopen a finished task
    if outcome == "failed" and retryable and task.publications < 1 + MAX_RETRIES:
        return replace(task, outcome=outcome, closed=False, retry_at=at + RETRY_DELAY)
    return replace(task, outcome=outcome, closed=True, retry_at=None)


def _issued_in_window(moment: datetime, issued: Sequence[datetime], window: timedelta) -> int:
    return sum(1 for i in issued if moment - window < i <= moment)
