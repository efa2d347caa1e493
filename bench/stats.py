"""Percentiles as the report gives them."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 95, 99)


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float] | None:
    """p50, p95 and p99 in milliseconds, by nearest rank (a value that was observed); None when empty."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return {f"p{p}": round(ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)] * 1000, 1) for p in PERCENTILES}
