"""When due chatbot tasks may go out: quiet hours, the per-creator cap, task ids and worker retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from projections.chatbot_tasks import (
    MAX_RETRIES,
    RETRY_DELAY,
    TaskAttempts,
    next_publication,
    on_worker_result,
    task_id,
)
from projections.chatbot_timing import after_daily_cap, after_quiet_hours, dispatch_time, region_timezone
from projections.quiet_hours import parse_quiet_hours

MX = ZoneInfo("America/Mexico_City")  # UTC-6 all year since 2022
NIGHT = parse_quiet_hours("21:00-09:00")
T0 = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


def mx(day: int, hour: int, minute: int = 0) -> datetime:
    """A Mexico City wall time in May 2026, as the UTC instant the functions take and return."""
    return datetime(2026, 5, day, hour, minute, tzinfo=MX).astimezone(UTC)


def test_region_timezone_knows_mexico_and_falls_back_to_utc() -> None:
    assert region_timezone("MX") == MX
    assert region_timezone("mx") == MX
    assert region_timezone("ZZ") == ZoneInfo("UTC")


def test_due_at_23_local_goes_out_at_9_next_morning() -> None:
    assert mx(4, 23) == datetime(2026, 5, 5, 5, 0, tzinfo=UTC)
    assert after_quiet_hours(mx(4, 23), NIGHT, MX) == datetime(2026, 5, 5, 15, 0, tzinfo=UTC)


def test_due_after_midnight_local_waits_for_the_same_morning() -> None:
    assert after_quiet_hours(mx(5, 2), NIGHT, MX) == mx(5, 9)


def test_due_at_8_59_waits_until_9_and_9_goes_at_once() -> None:
    assert after_quiet_hours(mx(5, 8, 59), NIGHT, MX) == mx(5, 9)
    assert after_quiet_hours(mx(5, 9), NIGHT, MX) == mx(5, 9)


def test_quiet_hours_start_at_21_sharp() -> None:
    assert after_quiet_hours(mx(5, 20, 59), NIGHT, MX) == mx(5, 20, 59)
    assert after_quiet_hours(mx(5, 21), NIGHT, MX) == mx(6, 9)


def test_quiet_hours_off_never_delays() -> None:
    assert after_quiet_hours(mx(4, 23), None, MX) == mx(4, 23)
    assert after_quiet_hours(mx(4, 23), parse_quiet_hours("off"), MX) == mx(4, 23)


def test_window_that_does_not_wrap_midnight() -> None:
    lunch = parse_quiet_hours("13:00-14:30")
    assert after_quiet_hours(mx(5, 13, 10), lunch, MX) == mx(5, 14, 30)
    assert after_quiet_hours(mx(5, 12, 59), lunch, MX) == mx(5, 12, 59)


def test_quiet_hours_end_follows_daylight_saving_time() -> None:
    new_york = ZoneInfo("America/New_York")
    # 2026-03-08 clocks go forward: 22:00 EST the night before ends at 09:00 EDT = 13:00 UTC.
    evening = datetime(2026, 3, 7, 22, 0, tzinfo=new_york).astimezone(UTC)
    assert after_quiet_hours(evening, NIGHT, new_york) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_fewer_than_cap_in_the_window_goes_at_once() -> None:
    issued = [T0 - timedelta(hours=30), T0 - timedelta(hours=2), T0 - timedelta(hours=1)]
    assert after_daily_cap(T0, issued, cap=3) == T0


def test_fourth_task_waits_until_the_oldest_leaves_the_window() -> None:
    issued = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert after_daily_cap(T0 + timedelta(hours=3), issued, cap=3) == T0 + timedelta(hours=24)


def test_cap_counts_only_the_trailing_24_hours() -> None:
    issued = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=20)]
    # At T0+24h the first has left, but three remain until T0+25h.
    assert after_daily_cap(T0 + timedelta(hours=23), issued, cap=3) == T0 + timedelta(hours=25)


def test_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="cap"):
        after_daily_cap(T0, [], cap=0)


def test_dispatch_time_never_earlier_than_now() -> None:
    now = mx(5, 12)
    assert dispatch_time(mx(5, 10), now, quiet=NIGHT, tz=MX, issued=[], cap=3) == now


def test_dispatch_time_waits_for_morning_then_for_the_cap() -> None:
    issued = [mx(4, 10), mx(4, 11), mx(4, 20)]
    # Due in the night; at 09:00 three were issued within 24 h, and at 10:00 the oldest has left.
    assert dispatch_time(mx(4, 23), mx(4, 23), quiet=NIGHT, tz=MX, issued=issued, cap=3) == mx(5, 10)


def test_dispatch_time_cap_release_in_the_night_waits_for_morning() -> None:
    issued = [mx(4, 22), mx(4, 22, 10), mx(4, 22, 20)]  # sent while quiet hours were off
    assert dispatch_time(mx(5, 9), mx(5, 9), quiet=NIGHT, tz=MX, issued=issued, cap=3) == mx(6, 9)


def test_task_id_is_deterministic_and_differs_per_run() -> None:
    first = task_id("sample-1", "no_content", 1)
    assert first == task_id("sample-1", "no_content", 1)
    assert first != task_id("sample-1", "no_content", 2)
    assert first != task_id("sample-1", "shipped", 1)
    assert first != task_id("sample-2", "no_content", 1)
    assert len(first) == 36


def test_sent_closes_the_task() -> None:
    task = on_worker_result(TaskAttempts("t1", publications=1), outcome="sent", retryable=False, at=T0)
    assert (task.closed, task.outcome, task.retry_at) == (True, "sent", None)


def test_skipped_closes_the_task_even_when_retryable() -> None:
    task = on_worker_result(TaskAttempts("t1", publications=1), outcome="skipped", retryable=True, at=T0)
    assert task.closed


def test_retryable_failure_is_retried_an_hour_later_at_most_twice() -> None:
    task = TaskAttempts("t1", publications=1)
    retries = 0
    clock = T0
    while True:
        task = on_worker_result(task, outcome="failed", retryable=True, at=clock)
        if task.closed:
            break
        assert task.retry_at == clock + RETRY_DELAY
        retries += 1
        clock = task.retry_at
        task = TaskAttempts(task.task_id, task.publications + 1, task.outcome)  # republished, same id
    assert retries == MAX_RETRIES == 2
    assert (task.publications, task.outcome, task.retry_at) == (3, "failed", None)


def test_failure_that_is_not_retryable_closes_at_once() -> None:
    task = on_worker_result(TaskAttempts("t1", publications=1), outcome="failed", retryable=False, at=T0)
    assert (task.closed, task.retry_at) == (True, None)


def test_result_for_a_closed_task_changes_nothing() -> None:
    closed = TaskAttempts("t1", publications=1, outcome="sent", closed=True)
    assert on_worker_result(closed, outcome="failed", retryable=True, at=T0) is closed


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        on_worker_result(TaskAttempts("t1", publications=1), outcome="lost", retryable=False, at=T0)


def test_publications_are_numbered_on_until_the_retries_are_used_up() -> None:
    assert [next_publication(n) for n in (0, 1, 2, 3)] == [2, 2, 3, None]
