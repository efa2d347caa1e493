"""The one rule for operators' messaging changes, shared by the catalog and chatbot projections.

Changes apply in the order of their `at`, not the order they arrive: a late, older opt-in never
undoes a newer opt-out. Opting in again re-enables future messages; cancelled ones stay cancelled
(`chatbot_rules.on_opted_out`).
"""

from __future__ import annotations

from datetime import datetime


def supersedes(change_at: datetime, known_at: datetime | None) -> bool:
    """Whether a change made at `change_at` replaces the one known (made at `known_at`, if any)."""
    return known_at is None or change_at >= known_at
