"""How much one projection page may hold (service/eventstore.py `PageSize`)."""

from __future__ import annotations

import pytest

from service.eventstore import PageSize
from service.settings import Settings


@pytest.mark.parametrize(("events", "stored_bytes"), [(0, 1024), (500, 0), (-1, -1)])
def test_a_page_without_room_for_one_event_is_refused(events: int, stored_bytes: int) -> None:
    # Read, such a page would be empty, which means "nothing left below the fence": the rest skipped.
    with pytest.raises(ValueError, match="room for one event"):
        PageSize(events, stored_bytes)


def test_the_settings_give_the_runner_and_rebuilds_their_page_size() -> None:
    settings = Settings(projection_batch_size=7, projection_page_bytes=4096)
    assert settings.page_size == PageSize(events=7, stored_bytes=4096)
    assert Settings().page_size == PageSize() == PageSize(events=500, stored_bytes=1024 * 1024)
