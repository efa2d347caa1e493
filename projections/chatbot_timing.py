"""When a due chatbot task may actually go out: quiet hours and the per-creator daily cap.

A task that falls due in the region's quiet hours waits until they end; a creator gets at most `cap`
tasks in any 24 hours, and more are deferred, never dropped. Pure: every time comes in as an
argument, all in UTC. (Task ids and retries: `chatbot_tasks`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from projections.quiet_hours import QuietHours

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


def region_timezone(region: str) -> ZoneInfo:
    """The region's local zone; an unknown region falls back to UTC rather than failing the dispatch."""
    return ZoneInfo(REGION_TIMEZONES.get(region.upper(), "UTC"))


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


def cap_window_start(now: datetime, window: timedelta = DAILY_WINDOW) -> datetime:
    """The oldest issue time that still counts against the cap at `now` (what the dispatcher loads)."""
    return now - window


def _issued_in_window(moment: datetime, issued: Sequence[datetime], window: timedelta) -> int:
    return sum(1 for i in issued if moment - window < i <= moment)
