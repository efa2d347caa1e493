"""The garbage collector's settings for a process that folds pages of thousands of rows.

A page of crawl batches allocates hundreds of thousands of objects that live until the page is
written (rows, states, sightings, derived events). With CPython's default thresholds (700, 10, 10)
the collector runs every 700 net allocations and scans the whole heap every hundred of those; in the
fold of benchmark workload (a) that was a sixth of its time (115 µs a row against 96 µs with a
gen-0 threshold of 10,000; docs/performance.md). The folds make almost no reference cycles, so
collecting them less often keeps little garbage for longer.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 10)


def tune_for_folding() -> None:
    """Leave what start-up loaded (modules, settings, the composition root) out of every collection,
    and collect the young generation every 10,000 net allocations instead of 700. Garbage is collected
    first: what is frozen is never collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
