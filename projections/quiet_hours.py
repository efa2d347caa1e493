"""The quiet-hours window, parsed from `CHATBOT_QUIET_HOURS` (for example `21:00-09:00`, or `off`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which nothing is dispatched; the window may wrap past midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def parse_quiet_hours(text: str) -> QuietHours | None:
    """`HH:MM-HH:MM` → a window; `off` (or empty) → None. Raises ValueError with the expected shape."""
    text = text.strip().lower()
    if text in ("", "off", "none"):
        return None
    try:
        start_text, end_text = text.split("-")
        return QuietHours(start=time.fromisoformat(start_text.strip()), end=time.fromisoformat(end_text.strip()))
    except ValueError as exc:
        raise ValueError(f"CHATBOT_QUIET_HOURS must look like '21:00-09:00' or 'off', got {text!r}") from exc
