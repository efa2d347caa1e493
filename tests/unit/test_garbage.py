"""The service's garbage-collector settings (why: service/garbage.py, docs/performance.md)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from service.garbage import THRESHOLDS, tune_for_folding


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_restored")
def test_the_young_generation_is_collected_less_often_and_the_start_up_heap_is_left_out() -> None:
    gc.unfreeze()
    tune_for_folding()
    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[0] > 700  # CPython's default, which cost the fold a sixth of its time
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("collector_restored")
def test_garbage_is_collected_before_the_heap_is_frozen() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.unfreeze()
    gc.disable()
    try:
        garbage = weakref.ref(Cycle())  # unreachable, kept alive only by its own reference
        assert garbage() is not None
        tune_for_folding()
    finally:
        gc.enable()
    assert garbage() is None, "a garbage cycle was frozen instead of freed"
